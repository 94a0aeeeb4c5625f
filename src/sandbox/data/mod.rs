//! Deterministic payroll data for the emulator's connections: a company, its people, their
//! employment and income, and bi-weekly pay runs with pay statements whose totals add up.
//!
//! Nothing is stored: every value is a pure function of the connection's `company_id` (the
//! seed), the company size and an index, so the same connection answers the same people and pay
//! runs every time, and a company of a few thousand people costs no memory until a page of it is
//! asked for. Ids are UUID-shaped and carry their index (masked by the seed), so an id sent back
//! by a client is resolved without a lookup table, and an id of another company is not found.
//!
//! Pay runs fall on one fixed bi-weekly grid of Fridays (from [`PAY_GRID_ANCHOR`]), so a payment
//! keeps its id from day to day; `/employer/payment` lists the grid dates of the last
//! [`HISTORY_DAYS`] days. Amounts are integer cents, as Finch sends them.

mod names;
pub(crate) mod wire;

use chrono::{Days, NaiveDate};
use uuid::{Builder, Uuid};

use names::{CITIES, DEPARTMENTS, FIRST_NAMES, LAST_NAMES, STREETS};
use wire::{
    Account, CompanyBody, Deduction, DepartmentName, DirectoryEntry, Earning, Email,
    EmployerContribution, EmploymentBody, EmploymentKind, Entity, Income, IndividualBody, Location,
    ManagerRef, Money, PayPeriod, PayStatement, Payment, Phone, Tax,
};

/// The first pay date of the grid (a Friday); every pay date is this plus a multiple of 14 days.
const PAY_GRID_ANCHOR: (i32, u32, u32) = (2020, 1, 3);
/// How far back `/employer/payment` has pay runs.
pub(crate) const HISTORY_DAYS: u64 = 182;
/// Fan-out of the management tree: person `i` reports to person `(i - 1) / FAN_OUT`.
const FAN_OUT: u32 = 6;
/// Latest start date of anyone (so everyone has pay history well before "now").
const LATEST_START: (i32, u32, u32) = (2025, 12, 1);
const CURRENCY: &str = "usd";

/// Id namespaces, so a person's id never resolves as a payment's.
const TAG_PERSON: u64 = 0x7065_7273_6f6e_0001;
const TAG_PAYMENT: u64 = 0x7061_796d_656e_0002;

/// SplitMix64: a tiny, well-mixed generator; the emulator needs repeatability, not secrecy.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform-enough in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// In `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        // Every list used here is a non-empty constant.
        items[self.below(items.len() as u64) as usize]
    }
}

/// The SplitMix64 finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a, to turn an id string into a seed.
fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn date(ymd: (i32, u32, u32)) -> NaiveDate {
    NaiveDate::from_ymd_opt(ymd.0, ymd.1, ymd.2).unwrap_or_default()
}

fn add_days(d: NaiveDate, n: u64) -> NaiveDate {
    d.checked_add_days(Days::new(n)).unwrap_or(d)
}

fn sub_days(d: NaiveDate, n: u64) -> NaiveDate {
    d.checked_sub_days(Days::new(n)).unwrap_or(d)
}

fn percent_of(amount: i64, per_ten_thousand: i64) -> i64 {
    amount * per_ten_thousand / 10_000
}

/// How a person is employed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    FullTime,
    PartTime,
    Contractor,
}

/// The numbers behind a person, without any strings: enough to pay them.
#[derive(Debug, Clone, Copy)]
struct Core {
    kind: Kind,
    department: usize,
    start: NaiveDate,
    end: Option<NaiveDate>,
    /// Yearly salary in cents (full time) or hourly rate in cents (others).
    rate: i64,
}

impl Core {
    fn employed_during(&self, from: NaiveDate, to: NaiveDate) -> bool {
        self.start <= to && self.end.is_none_or(|end| end >= from)
    }
}

/// One connection's company, ready to generate any part of its data.
#[derive(Debug, Clone)]
pub(crate) struct Company {
    id: String,
    seed: u64,
    size: u32,
    founded: NaiveDate,
    /// Indexes into [`DEPARTMENTS`] this company has (the first is always "Executive").
    departments: Vec<usize>,
}

impl Company {
    /// The company behind `company_id`, with `size` people.
    pub(crate) fn new(company_id: &str, size: u32) -> Self {
        let seed = hash_str(company_id);
        let mut rng = Rng::new(seed);
        let founded = add_days(date((2008, 1, 1)), rng.below(4000));
        let wanted = (2 + size as usize / 8).min(DEPARTMENTS.len());
        let mut departments = vec![0];
        let mut order: Vec<usize> = (1..DEPARTMENTS.len()).collect();
        // A deterministic shuffle of the other departments, then the first few are kept.
        for i in (1..order.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        departments.extend(order.into_iter().take(wanted.saturating_sub(1)));
        Self {
            id: company_id.to_owned(),
            seed,
            size: size.max(1),
            founded,
            departments,
        }
    }

    /// The default size of a connection made through Connect: 5 to 50 people.
    pub(crate) fn default_size(company_id: &str) -> u32 {
        5 + (mix(hash_str(company_id) ^ 0x5157) % 46) as u32
    }

    /// How many people the directory lists.
    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    fn name_parts(&self) -> (&'static str, &'static str) {
        let mut rng = Rng::new(self.seed ^ 0xC0);
        (
            rng.pick(names::COMPANY_WORDS),
            rng.pick(names::COMPANY_SUFFIXES),
        )
    }

    /// The company's legal name.
    pub(crate) fn legal_name(&self) -> String {
        let (word, suffix) = self.name_parts();
        format!("{word} {suffix}")
    }

    fn location(&self, n: u64) -> Location {
        let mut rng = Rng::new(self.seed ^ mix(n ^ 0x10C));
        let (city, state, zip) = rng.pick(CITIES);
        Location {
            line1: Some(format!("{} {}", rng.between(10, 9999), rng.pick(STREETS))),
            line2: None,
            city: Some(city.to_owned()),
            state: Some(state.to_owned()),
            postal_code: Some(zip.to_owned()),
            country: Some("US".to_owned()),
            name: None,
            source_id: None,
        }
    }

    /// `GET /employer/company`.
    pub(crate) fn company(&self) -> CompanyBody {
        let mut rng = Rng::new(self.seed ^ 0xC1);
        let (word, _) = self.name_parts();
        let domain = word.to_ascii_lowercase().replace(' ', "");
        let locations = 1 + (self.size as u64 / 500).min(3);
        CompanyBody {
            id: self.id.clone(),
            legal_name: Some(self.legal_name()),
            entity: Some(Entity {
                kind: Some("corporation"),
                subtype: Some("c_corporation"),
            }),
            ein: Some(format!(
                "{:02}-{:07}",
                rng.between(10, 98),
                rng.below(10_000_000)
            )),
            primary_email: Some(format!("payroll@{domain}.example")),
            primary_phone_number: Some(format!("+1{}", rng.between(2_002_000_000, 9_899_999_999))),
            departments: self
                .departments
                .iter()
                .map(|&d| DepartmentName {
                    name: Some(DEPARTMENTS[d].0),
                    parent: None,
                })
                .collect(),
            locations: (0..locations).map(|n| self.location(n)).collect(),
            accounts: vec![Account {
                account_name: Some("Payroll account"),
                account_number: Some(format!("{:010}", rng.below(10_000_000_000))),
                account_type: Some("checking"),
                institution_name: Some("First Sandbox Bank"),
                routing_number: Some(format!("0{:08}", rng.below(100_000_000))),
            }],
        }
    }

    // ---- ids ----

    fn id_for(&self, tag: u64, index: u32) -> String {
        let hi = mix(self.seed ^ tag ^ mix(u64::from(index)));
        let mask = mix(self.seed ^ tag) as u32;
        let upper = (mix(self.seed ^ tag ^ 0xFF) >> 32) << 32;
        let lo = upper | u64::from(index ^ mask);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&hi.to_be_bytes());
        bytes[8..].copy_from_slice(&lo.to_be_bytes());
        Builder::from_random_bytes(bytes).into_uuid().to_string()
    }

    fn index_of(&self, tag: u64, id: &str) -> Option<u32> {
        let uuid = Uuid::parse_str(id).ok()?;
        let bytes = uuid.as_bytes();
        let low = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        let index = low ^ mix(self.seed ^ tag) as u32;
        (self.id_for(tag, index) == uuid.to_string()).then_some(index)
    }

    /// The Finch id of person `index`.
    pub(crate) fn person_id(&self, index: u32) -> String {
        self.id_for(TAG_PERSON, index)
    }

    /// The person an id names, if it is one of this company's.
    pub(crate) fn person_index(&self, id: &str) -> Option<u32> {
        self.index_of(TAG_PERSON, id).filter(|&i| i < self.size)
    }

    fn payment_id(&self, k: u32) -> String {
        self.id_for(TAG_PAYMENT, k)
    }

    // ---- people ----

    fn person_rng(&self, index: u32) -> Rng {
        Rng::new(self.seed ^ mix(u64::from(index) ^ TAG_PERSON))
    }

    fn core(&self, index: u32) -> Core {
        let mut rng = self.person_rng(index);
        let kind = if index == 0 {
            Kind::FullTime
        } else {
            match rng.below(100) {
                0..=84 => Kind::FullTime,
                85..=92 => Kind::PartTime,
                _ => Kind::Contractor,
            }
        };
        let department = if index == 0 {
            0
        } else {
            1 + rng.below(self.departments.len().saturating_sub(1).max(1) as u64) as usize
        }
        .min(self.departments.len() - 1);
        let span = (date(LATEST_START) - self.founded).num_days().max(1) as u64;
        let start = if index == 0 {
            self.founded
        } else {
            add_days(self.founded, rng.below(span))
        };
        let end = (index != 0 && rng.chance(6)).then(|| add_days(start, rng.between(60, 900)));
        let rate = match kind {
            Kind::FullTime => (rng.between(100, 440) * 500 * 100) as i64,
            Kind::PartTime => (rng.between(18, 45) * 100) as i64,
            Kind::Contractor => (rng.between(60, 150) * 100) as i64,
        };
        Core {
            kind,
            department: self.departments[department],
            start,
            end,
            rate,
        }
    }

    fn names(&self, index: u32) -> (&'static str, Option<&'static str>, &'static str) {
        let mut rng = Rng::new(self.seed ^ mix(u64::from(index) ^ 0x4E41_4D45));
        let first = rng.pick(FIRST_NAMES);
        let middle = rng.chance(30).then(|| rng.pick(FIRST_NAMES));
        let last = rng.pick(LAST_NAMES);
        (first, middle, last)
    }

    fn manager(&self, index: u32) -> Option<ManagerRef> {
        (index > 0).then(|| ManagerRef {
            id: self.person_id((index - 1) / FAN_OUT),
        })
    }

    fn is_active(core: &Core, today: NaiveDate) -> bool {
        core.end.is_none_or(|end| end >= today)
    }

    /// One entry of `GET /employer/directory`.
    pub(crate) fn directory_entry(&self, index: u32, today: NaiveDate) -> DirectoryEntry {
        let core = self.core(index);
        let (first, middle, last) = self.names(index);
        DirectoryEntry {
            id: self.person_id(index),
            first_name: Some(first),
            middle_name: middle,
            last_name: Some(last),
            department: Some(DepartmentName {
                name: Some(DEPARTMENTS[core.department].0),
                parent: None,
            }),
            manager: self.manager(index),
            is_active: Some(Self::is_active(&core, today)),
        }
    }

    /// The body of one `POST /employer/individual` answer.
    pub(crate) fn individual(&self, index: u32, with_ssn: bool) -> IndividualBody {
        let (first, middle, last) = self.names(index);
        let mut rng = Rng::new(self.seed ^ mix(u64::from(index) ^ 0x494E_4456));
        let gender = rng.pick(&["female", "male", "female", "male", "other"]);
        let ethnicity = rng.pick(&[
            "asian",
            "white",
            "black_or_african_american",
            "hispanic_or_latino",
            "two_or_more_races",
            "decline_to_specify",
        ]);
        let dob = add_days(date((1960, 1, 1)), rng.below(365 * 42));
        let (company_word, _) = self.name_parts();
        let domain = company_word.to_ascii_lowercase().replace(' ', "");
        let login = format!(
            "{}.{}",
            first.to_ascii_lowercase(),
            last.to_ascii_lowercase()
        );
        IndividualBody {
            id: self.person_id(index),
            first_name: Some(first),
            middle_name: middle,
            last_name: Some(last),
            preferred_name: None,
            dob: Some(dob.to_string()),
            gender: Some(gender),
            ethnicity: Some(ethnicity),
            marital_status: Some(rng.pick(&["single", "married", "married", "divorced"])),
            emails: vec![
                Email {
                    data: format!("{login}{index}@{domain}.example"),
                    kind: Some("work"),
                },
                Email {
                    data: format!("{login}.{}@mail.example", rng.below(1000)),
                    kind: Some("personal"),
                },
            ],
            phone_numbers: vec![Phone {
                data: Some(format!("+1{}", rng.between(2_002_000_000, 9_899_999_999))),
                kind: Some("personal"),
            }],
            residence: Some(self.location(1000 + u64::from(index))),
            ssn: with_ssn.then(|| {
                format!(
                    "{:03}-{:02}-{:04}",
                    rng.between(100, 665),
                    rng.between(1, 99),
                    rng.between(1, 9999)
                )
            }),
            encrypted_ssn: None,
        }
    }

    /// The body of one `POST /employer/employment` answer.
    pub(crate) fn employment(&self, index: u32, today: NaiveDate) -> EmploymentBody {
        let core = self.core(index);
        let (first, middle, last) = self.names(index);
        let mut rng = Rng::new(self.seed ^ mix(u64::from(index) ^ 0x454D_504C));
        let (department, titles) = DEPARTMENTS[core.department];
        let title = if index == 0 {
            "Chief Executive Officer"
        } else {
            rng.pick(titles)
        };
        let active = Self::is_active(&core, today);
        let (kind, subtype) = match core.kind {
            Kind::FullTime => ("employee", "full_time"),
            Kind::PartTime => ("employee", "part_time"),
            Kind::Contractor => ("contractor", "individual_contractor"),
        };
        let income = self.income(&core);
        EmploymentBody {
            id: self.person_id(index),
            first_name: Some(first),
            middle_name: middle,
            last_name: Some(last),
            title: Some(title),
            department: Some(DepartmentName {
                name: Some(department),
                parent: None,
            }),
            manager: self.manager(index),
            employment: Some(EmploymentKind {
                kind: Some(kind),
                subtype: Some(subtype),
            }),
            employment_status: Some(if active { "active" } else { "terminated" }),
            flsa_status: Some(match core.kind {
                Kind::FullTime => "exempt",
                _ => "non_exempt",
            }),
            start_date: Some(core.start.to_string()),
            end_date: core.end.filter(|_| !active).map(|d| d.to_string()),
            latest_rehire_date: None,
            is_active: Some(active),
            class_code: None,
            location: Some(self.location(rng.below(1 + (self.size as u64 / 500).min(3)))),
            income: Some(income.clone()),
            income_history: vec![income],
            custom_fields: Vec::new(),
            source_id: Some(format!("{}", 1000 + index)),
            work_id: Some(format!("E{:05}", index + 1)),
        }
    }

    fn income(&self, core: &Core) -> Income {
        Income {
            amount: Some(core.rate),
            currency: Some(CURRENCY),
            unit: Some(match core.kind {
                Kind::FullTime => "yearly",
                _ => "hourly",
            }),
            effective_date: Some(core.start.to_string()),
        }
    }

    // ---- pay runs ----

    fn pay_date(k: u32) -> NaiveDate {
        add_days(date(PAY_GRID_ANCHOR), u64::from(k) * 14)
    }

    /// Grid indexes of the pay runs in `[from, to]` that lie in the history window.
    fn pay_runs(&self, from: NaiveDate, to: NaiveDate, today: NaiveDate) -> Vec<u32> {
        let first = from.max(sub_days(today, HISTORY_DAYS)).max(self.founded);
        let last = to.min(today);
        if first > last {
            return Vec::new();
        }
        let anchor = date(PAY_GRID_ANCHOR);
        let days = (first - anchor).num_days().max(0);
        let mut k = u32::try_from((days + 13) / 14).unwrap_or(u32::MAX);
        let mut out = Vec::new();
        while Self::pay_date(k) <= last {
            out.push(k);
            k += 1;
        }
        out
    }

    fn period(k: u32) -> (NaiveDate, NaiveDate) {
        let pay = Self::pay_date(k);
        (sub_days(pay, 20), sub_days(pay, 7))
    }

    /// The pay run a payment id names, if it is one of this company's and has been paid.
    pub(crate) fn payment_index(&self, id: &str, today: NaiveDate) -> Option<u32> {
        self.index_of(TAG_PAYMENT, id)
            .filter(|&k| Self::pay_date(k) <= today && Self::pay_date(k) >= self.founded)
    }

    /// The people paid in pay run `k`, in directory order.
    fn paid_in(&self, k: u32) -> impl Iterator<Item = (u32, Core)> + '_ {
        let (from, to) = Self::period(k);
        (0..self.size).filter_map(move |i| {
            let core = self.core(i);
            core.employed_during(from, to).then_some((i, core))
        })
    }

    /// Person `index`'s statement for pay run `k`.
    fn statement(&self, index: u32, core: &Core, k: u32) -> PayStatement {
        let mut rng = Rng::new(self.seed ^ mix(u64::from(index) ^ mix(u64::from(k) ^ 0x5041)));
        let (gross, hours, earning) = match core.kind {
            Kind::FullTime => (core.rate / 26, 80.0, "salary"),
            Kind::PartTime => {
                let hours = rng.between(30, 60) as i64;
                (core.rate * hours, hours as f64, "wage")
            }
            Kind::Contractor => {
                let hours = rng.between(20, 80) as i64;
                (core.rate * hours, hours as f64, "1099")
            }
        };
        let mut taxes = Vec::new();
        let mut deductions = Vec::new();
        let mut contributions = Vec::new();
        if core.kind != Kind::Contractor {
            for (name, kind, rate) in [
                ("Federal Income Tax", "federal", 1200),
                ("State Income Tax", "state", 400),
                ("Social Security", "fica", 620),
                ("Medicare", "fica", 145),
            ] {
                taxes.push(Tax {
                    name: Some(name),
                    kind: Some(kind),
                    employer: Some(false),
                    amount: Some(percent_of(gross, rate)),
                    currency: Some(CURRENCY),
                });
            }
            for (name, rate) in [("Social Security", 620), ("Medicare", 145)] {
                taxes.push(Tax {
                    name: Some(name),
                    kind: Some("fica"),
                    employer: Some(true),
                    amount: Some(percent_of(gross, rate)),
                    currency: Some(CURRENCY),
                });
            }
        }
        if core.kind == Kind::FullTime {
            deductions.push(Deduction {
                name: Some("401(k)"),
                kind: Some("401k"),
                pre_tax: Some(true),
                amount: Some(percent_of(gross, 500)),
                currency: Some(CURRENCY),
            });
            deductions.push(Deduction {
                name: Some("Medical"),
                kind: Some("s125_medical"),
                pre_tax: Some(true),
                amount: Some(12_000),
                currency: Some(CURRENCY),
            });
            contributions.push(EmployerContribution {
                name: Some("401(k) match"),
                kind: Some("401k"),
                amount: Some(percent_of(gross, 300)),
                currency: Some(CURRENCY),
            });
        }
        let employee_taxes: i64 = taxes
            .iter()
            .filter(|t| t.employer == Some(false))
            .filter_map(|t| t.amount)
            .sum();
        let deducted: i64 = deductions.iter().filter_map(|d| d.amount).sum();
        PayStatement {
            individual_id: self.person_id(index),
            kind: Some("regular_payroll"),
            payment_method: Some(if core.kind == Kind::Contractor {
                "check"
            } else {
                "direct_deposit"
            }),
            total_hours: Some(hours),
            gross_pay: Some(Money::usd(gross)),
            net_pay: Some(Money::usd(gross - employee_taxes - deducted)),
            earnings: vec![Earning {
                name: Some(match earning {
                    "salary" => "Salary",
                    "wage" => "Regular hours",
                    _ => "Contract work",
                }),
                kind: Some(earning),
                amount: Some(gross),
                hours: Some(hours),
                currency: Some(CURRENCY),
            }],
            taxes,
            employee_deductions: deductions,
            employer_contributions: contributions,
        }
    }

    /// `GET /employer/payment?start_date&end_date` (both inclusive).
    pub(crate) fn payments(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    ) -> Vec<Payment> {
        self.pay_runs(from, to, today)
            .into_iter()
            .map(|k| self.payment(k))
            .collect()
    }

    fn payment(&self, k: u32) -> Payment {
        let (mut gross, mut net, mut employee_taxes, mut employer_taxes, mut extra) =
            (0i64, 0i64, 0i64, 0i64, 0i64);
        let mut ids = Vec::new();
        for (i, core) in self.paid_in(k) {
            let s = self.statement(i, &core, k);
            gross += s.gross_pay.as_ref().and_then(|m| m.amount).unwrap_or(0);
            net += s.net_pay.as_ref().and_then(|m| m.amount).unwrap_or(0);
            for t in &s.taxes {
                if t.employer == Some(true) {
                    employer_taxes += t.amount.unwrap_or(0);
                } else {
                    employee_taxes += t.amount.unwrap_or(0);
                }
            }
            extra += s
                .employer_contributions
                .iter()
                .filter_map(|c| c.amount)
                .sum::<i64>();
            ids.push(s.individual_id);
        }
        let pay = Self::pay_date(k);
        let (start, end) = Self::period(k);
        Payment {
            id: self.payment_id(k),
            pay_date: Some(pay.to_string()),
            debit_date: Some(sub_days(pay, 2).to_string()),
            pay_period: Some(PayPeriod {
                start_date: Some(start.to_string()),
                end_date: Some(end.to_string()),
            }),
            gross_pay: Some(Money::usd(gross)),
            net_pay: Some(Money::usd(net)),
            employee_taxes: Some(Money::usd(employee_taxes)),
            employer_taxes: Some(Money::usd(employer_taxes)),
            company_debit: Some(Money::usd(gross + employer_taxes + extra)),
            individual_ids: ids,
            pay_frequencies: vec!["bi_weekly"],
            pay_group_ids: Vec::new(),
        }
    }

    /// The statements of pay run `k`: how many there are, and the page `[offset, offset+limit)`.
    pub(crate) fn pay_statements(
        &self,
        k: u32,
        offset: usize,
        limit: usize,
    ) -> (usize, Vec<PayStatement>) {
        let mut count = 0;
        let mut page = Vec::new();
        for (i, core) in self.paid_in(k) {
            if count >= offset && page.len() < limit {
                page.push(self.statement(i, &core, k));
            }
            count += 1;
        }
        (count, page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        date((2026, 12, 1))
    }

    #[test]
    fn the_same_company_id_gives_the_same_data_and_another_gives_other_data() {
        let a = Company::new("company-a", 30);
        let again = Company::new("company-a", 30);
        let b = Company::new("company-b", 30);
        assert_eq!(a.company().legal_name, again.company().legal_name);
        assert_eq!(a.person_id(7), again.person_id(7));
        assert_ne!(a.person_id(7), b.person_id(7));
        let ja = serde_json::to_string(&a.employment(3, today())).unwrap();
        let jb = serde_json::to_string(&again.employment(3, today())).unwrap();
        assert_eq!(ja, jb);
    }

    #[test]
    fn ids_resolve_to_their_index_and_only_in_their_company() {
        let a = Company::new("company-a", 4000);
        let b = Company::new("company-b", 4000);
        for i in [0, 1, 17, 3999] {
            let id = a.person_id(i);
            assert!(Uuid::parse_str(&id).is_ok());
            assert_eq!(a.person_index(&id), Some(i));
            assert_eq!(b.person_index(&id), None);
        }
        assert_eq!(
            a.person_index(&Company::new("company-a", 5000).person_id(4500)),
            None
        );
        assert_eq!(a.person_index("not-a-uuid"), None);
        assert_eq!(a.person_index(&Uuid::new_v4().to_string()), None);
    }

    #[test]
    fn payments_add_up_to_their_statements() {
        let c = Company::new("company-a", 40);
        let payments = c.payments(date((2000, 1, 1)), today(), today());
        assert!((12..=14).contains(&payments.len()), "{}", payments.len());
        for p in &payments {
            let k = c.payment_index(&p.id, today()).unwrap();
            let (count, statements) = c.pay_statements(k, 0, 10_000);
            assert_eq!(count, statements.len());
            assert_eq!(count, p.individual_ids.len());
            let gross: i64 = statements
                .iter()
                .map(|s| s.gross_pay.as_ref().unwrap().amount.unwrap())
                .sum();
            let net: i64 = statements
                .iter()
                .map(|s| s.net_pay.as_ref().unwrap().amount.unwrap())
                .sum();
            assert_eq!(Some(gross), p.gross_pay.as_ref().unwrap().amount);
            assert_eq!(Some(net), p.net_pay.as_ref().unwrap().amount);
            for s in &statements {
                let g = s.gross_pay.as_ref().unwrap().amount.unwrap();
                let taxes: i64 = s
                    .taxes
                    .iter()
                    .filter(|t| t.employer == Some(false))
                    .map(|t| t.amount.unwrap())
                    .sum();
                let ded: i64 = s
                    .employee_deductions
                    .iter()
                    .map(|d| d.amount.unwrap())
                    .sum();
                assert_eq!(s.net_pay.as_ref().unwrap().amount.unwrap(), g - taxes - ded);
                assert!(g > 0);
            }
        }
    }

    #[test]
    fn connect_companies_are_small() {
        for id in ["a", "b", "c", "d", "e", "f"] {
            assert!((5..=50).contains(&Company::default_size(id)));
        }
    }
}
