//! Word lists the generated companies and people are made of.

pub(super) const FIRST_NAMES: &[&str] = &[
    "Ada", "Alan", "Amara", "Andre", "Beatriz", "Ben", "Carmen", "Chen", "Dana", "Diego", "Elena",
    "Emeka", "Farah", "Felix", "Grace", "Hana", "Hugo", "Imani", "Isaac", "Jada", "Jonas", "Kai",
    "Keiko", "Leila", "Liam", "Maya", "Mateo", "Nadia", "Noah", "Olga", "Omar", "Priya", "Quinn",
    "Rosa", "Sami", "Sofia", "Tariq", "Uma", "Victor", "Wen", "Yara", "Zoe",
];

pub(super) const LAST_NAMES: &[&str] = &[
    "Abara",
    "Alvarez",
    "Bergstrom",
    "Brown",
    "Castillo",
    "Chen",
    "Dubois",
    "Eze",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kim",
    "Kowalski",
    "Lopez",
    "Mbeki",
    "Moreau",
    "Nakamura",
    "Novak",
    "Okafor",
    "Olsen",
    "Patel",
    "Quispe",
    "Rossi",
    "Santos",
    "Schmidt",
    "Singh",
    "Tanaka",
    "Umar",
    "Varga",
    "Walsh",
    "Williams",
    "Xu",
    "Yilmaz",
    "Zhang",
];

pub(super) const COMPANY_WORDS: &[&str] = &[
    "Acorn",
    "Bluebird",
    "Cedar",
    "Driftwood",
    "Ember",
    "Fernhill",
    "Granite",
    "Harbor",
    "Ironwood",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Meridian",
    "Northwind",
    "Orchard",
    "Pinecrest",
    "Quarry",
    "Redwood",
    "Summit",
    "Tidewater",
    "Upland",
    "Valley",
    "Willow",
    "Yellowstone",
];

pub(super) const COMPANY_SUFFIXES: &[&str] = &[
    "Labs Inc.",
    "Logistics LLC",
    "Health Co.",
    "Foods Inc.",
    "Robotics Corp.",
    "Studios Inc.",
    "Analytics Inc.",
    "Outfitters LLC",
];

/// Departments and the titles people in them hold; the first is the executive team.
pub(super) const DEPARTMENTS: &[(&str, &[&str])] = &[
    (
        "Executive",
        &[
            "Chief Operating Officer",
            "Chief Financial Officer",
            "Chief of Staff",
        ],
    ),
    (
        "Engineering",
        &[
            "Software Engineer",
            "Senior Software Engineer",
            "Engineering Manager",
            "Site Reliability Engineer",
        ],
    ),
    (
        "Sales",
        &[
            "Account Executive",
            "Sales Development Representative",
            "Sales Manager",
        ],
    ),
    (
        "Marketing",
        &["Marketing Manager", "Content Strategist", "Growth Analyst"],
    ),
    (
        "Finance",
        &["Accountant", "Financial Analyst", "Controller"],
    ),
    (
        "People",
        &["People Partner", "Recruiter", "Payroll Specialist"],
    ),
    (
        "Operations",
        &[
            "Operations Associate",
            "Warehouse Lead",
            "Logistics Coordinator",
        ],
    ),
    (
        "Customer Success",
        &[
            "Support Specialist",
            "Customer Success Manager",
            "Implementation Lead",
        ],
    ),
    ("Legal", &["Counsel", "Paralegal"]),
    ("Design", &["Product Designer", "Design Lead"]),
];

pub(super) const CITIES: &[(&str, &str, &str)] = &[
    ("New York", "NY", "10001"),
    ("San Francisco", "CA", "94105"),
    ("Austin", "TX", "78701"),
    ("Chicago", "IL", "60601"),
    ("Denver", "CO", "80202"),
    ("Seattle", "WA", "98101"),
    ("Atlanta", "GA", "30303"),
    ("Boston", "MA", "02110"),
];

pub(super) const STREETS: &[&str] = &[
    "Main St",
    "Oak Ave",
    "Market St",
    "Elm St",
    "Pine St",
    "Maple Ave",
    "Cedar Rd",
    "Lake Dr",
];
