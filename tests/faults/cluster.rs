//! A private PostgreSQL cluster for one test: `initdb` into a temporary directory, started on a
//! free loopback port, restartable, stopped and removed when dropped (also when the test panics).
//!
//! Restarting the shared test server would break every other test running on the machine; a
//! cluster of our own can be restarted freely. PostgreSQL refuses to run as root, so when the
//! tests run as root its tools run as `postgres` (through `runuser`), in a directory it owns.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running private cluster; trust authentication on 127.0.0.1 only.
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    /// Creates and starts a cluster. Blocking (initdb takes a couple of seconds).
    pub fn start() -> Cluster {
        let dir = std::env::temp_dir().join(format!(
            "finchgate-faults-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("create the cluster directory");
        let as_postgres = is_root();
        if as_postgres {
            let (uid, gid) = postgres_ids();
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .expect("give the cluster directory to postgres");
        }
        let port = free_port();
        let cluster = Cluster {
            dir,
            port,
            as_postgres,
        };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.pg_ctl(&["start"]);
        cluster
    }

    /// A connection URL for `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// `pg_ctl stop -m fast` (every session is terminated), `down` with no server at all, then
    /// `pg_ctl start`. Blocking; call it from a blocking task.
    pub fn restart(&self, down: std::time::Duration) {
        self.stop();
        std::thread::sleep(down);
        self.start_again();
    }

    /// `pg_ctl stop -m fast`: every session is terminated and the server is gone. Blocking.
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast"]);
    }

    /// `pg_ctl start` after [`Cluster::stop`]. Blocking.
    pub fn start_again(&self) {
        self.pg_ctl(&["start"]);
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn pg_ctl(&self, action: &[&str]) {
        let data = self.data_dir();
        let log = self.dir.join("server.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            path_str(&self.dir)
        );
        let mut args = vec!["-D", path_str(&data), "-l", path_str(&log), "-w", "-o"];
        args.push(&options);
        args.extend_from_slice(action);
        self.run("pg_ctl", &args);
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let status = self.command(tool, args).status();
        let ok = status.as_ref().is_ok_and(|s| s.success());
        if !ok {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            panic!("{tool} {args:?} failed ({status:?}); server log:\n{log}");
        }
    }

    fn command(&self, tool: &str, args: &[&str]) -> Command {
        let binary = bin_dir()
            .map(|d| d.join(tool))
            .unwrap_or_else(|| PathBuf::from(tool));
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(binary);
            c
        } else {
            Command::new(binary)
        };
        command
            .args(args)
            .current_dir(&self.dir)
            .stdout(std::process::Stdio::null());
        command
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        let stopped = self
            .command(
                "pg_ctl",
                &["-D", path_str(&data), "-w", "-m", "immediate", "stop"],
            )
            .stderr(std::process::Stdio::null())
            .status();
        drop(stopped);
        drop(std::fs::remove_dir_all(&self.dir));
    }
}

/// `PG_BIN` if set, else the newest `/usr/lib/postgresql/<version>/bin` (Debian's layout), else
/// `None`: the tools are looked up on `PATH`.
fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("look up the postgres user");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("the postgres user exists")
    };
    (id("-u"), id("-g"))
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
