//! Every page can be reached by clicking from `/login` (issue 13, defect 2): a page that only a
//! typed address reaches is a page people cannot find.

use crate::helpers::{connection_id_from, spawn_app};

#[tokio::test]
async fn defect_2_every_connection_is_linked_from_the_connections_list() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    let done = app.client.get(url.as_str()).send().await.unwrap();
    assert_eq!(done.status(), 303, "the flow completes");
    let connection = connection_id_from(done.headers()["location"].to_str().unwrap());

    let list = app.get("/t/acme/").await;
    assert_eq!(list.status(), 200);
    let list = list.text().await.unwrap();
    assert!(list.contains("gusto"), "the connection is listed: {list}");
    let link = format!("href=\"/t/acme/connections/{connection}\"");
    assert!(
        list.contains(&link),
        "the connections list links to the connection ({link}): {list}"
    );
    app.stop().await;
}
