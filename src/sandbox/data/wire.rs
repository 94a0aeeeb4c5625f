//! The JSON shapes of Finch's data API as the emulator writes them (field names and enum values
//! from Finch's official SDK types, `finch-api` 2.9). Absent values are written as `null`, as
//! Finch does; amounts are integer cents.

use serde::Serialize;

/// `{amount, currency}`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Money {
    pub(crate) amount: Option<i64>,
    pub(crate) currency: &'static str,
}

impl Money {
    pub(crate) fn usd(amount: i64) -> Self {
        Self {
            amount: Some(amount),
            currency: "usd",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Location {
    pub(crate) line1: Option<String>,
    pub(crate) line2: Option<String>,
    pub(crate) city: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) postal_code: Option<String>,
    pub(crate) country: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) source_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DepartmentName {
    pub(crate) name: Option<&'static str>,
    pub(crate) parent: Option<()>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Entity {
    #[serde(rename = "type")]
    pub(crate) kind: Option<&'static str>,
    pub(crate) subtype: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Account {
    pub(crate) account_name: Option<&'static str>,
    pub(crate) account_number: Option<String>,
    pub(crate) account_type: Option<&'static str>,
    pub(crate) institution_name: Option<&'static str>,
    pub(crate) routing_number: Option<String>,
}

/// `GET /employer/company`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CompanyBody {
    pub(crate) id: String,
    pub(crate) legal_name: Option<String>,
    pub(crate) entity: Option<Entity>,
    pub(crate) ein: Option<String>,
    pub(crate) primary_email: Option<String>,
    pub(crate) primary_phone_number: Option<String>,
    pub(crate) departments: Vec<DepartmentName>,
    pub(crate) locations: Vec<Location>,
    pub(crate) accounts: Vec<Account>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ManagerRef {
    pub(crate) id: String,
}

/// One of `individuals` in `GET /employer/directory`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DirectoryEntry {
    pub(crate) id: String,
    pub(crate) first_name: Option<&'static str>,
    pub(crate) middle_name: Option<&'static str>,
    pub(crate) last_name: Option<&'static str>,
    pub(crate) department: Option<DepartmentName>,
    pub(crate) manager: Option<ManagerRef>,
    pub(crate) is_active: Option<bool>,
}

/// `paging` of the directory and of pay statements.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Paging {
    pub(crate) count: usize,
    pub(crate) offset: usize,
}

/// `GET /employer/directory`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DirectoryPage {
    pub(crate) paging: Paging,
    pub(crate) individuals: Vec<DirectoryEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Email {
    pub(crate) data: String,
    #[serde(rename = "type")]
    pub(crate) kind: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Phone {
    pub(crate) data: Option<String>,
    #[serde(rename = "type")]
    pub(crate) kind: Option<&'static str>,
}

/// The body of an `/employer/individual` answer.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct IndividualBody {
    pub(crate) id: String,
    pub(crate) first_name: Option<&'static str>,
    pub(crate) middle_name: Option<&'static str>,
    pub(crate) last_name: Option<&'static str>,
    pub(crate) preferred_name: Option<&'static str>,
    pub(crate) dob: Option<String>,
    pub(crate) gender: Option<&'static str>,
    pub(crate) ethnicity: Option<&'static str>,
    pub(crate) marital_status: Option<&'static str>,
    pub(crate) emails: Vec<Email>,
    pub(crate) phone_numbers: Vec<Phone>,
    pub(crate) residence: Option<Location>,
    pub(crate) ssn: Option<String>,
    pub(crate) encrypted_ssn: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct EmploymentKind {
    #[serde(rename = "type")]
    pub(crate) kind: Option<&'static str>,
    pub(crate) subtype: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Income {
    pub(crate) amount: Option<i64>,
    pub(crate) currency: Option<&'static str>,
    pub(crate) unit: Option<&'static str>,
    pub(crate) effective_date: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct CustomField {
    pub(crate) name: Option<String>,
    pub(crate) value: Option<String>,
}

/// The body of an `/employer/employment` answer.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EmploymentBody {
    pub(crate) id: String,
    pub(crate) first_name: Option<&'static str>,
    pub(crate) middle_name: Option<&'static str>,
    pub(crate) last_name: Option<&'static str>,
    pub(crate) title: Option<&'static str>,
    pub(crate) department: Option<DepartmentName>,
    pub(crate) manager: Option<ManagerRef>,
    pub(crate) employment: Option<EmploymentKind>,
    pub(crate) employment_status: Option<&'static str>,
    pub(crate) flsa_status: Option<&'static str>,
    pub(crate) start_date: Option<String>,
    pub(crate) end_date: Option<String>,
    pub(crate) latest_rehire_date: Option<String>,
    pub(crate) is_active: Option<bool>,
    pub(crate) class_code: Option<String>,
    pub(crate) location: Option<Location>,
    pub(crate) income: Option<Income>,
    pub(crate) income_history: Vec<Income>,
    pub(crate) custom_fields: Vec<CustomField>,
    pub(crate) source_id: Option<String>,
    pub(crate) work_id: Option<String>,
}

/// One item of a batch answer: `{individual_id | payment_id, code, body}`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BatchItem<B: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) individual_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) payment_id: Option<String>,
    pub(crate) code: u16,
    pub(crate) body: B,
}

/// `{responses: [...]}`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Responses<B: Serialize> {
    pub(crate) responses: Vec<BatchItem<B>>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PayPeriod {
    pub(crate) start_date: Option<String>,
    pub(crate) end_date: Option<String>,
}

/// One of `GET /employer/payment`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Payment {
    pub(crate) id: String,
    pub(crate) pay_date: Option<String>,
    pub(crate) debit_date: Option<String>,
    pub(crate) pay_period: Option<PayPeriod>,
    pub(crate) gross_pay: Option<Money>,
    pub(crate) net_pay: Option<Money>,
    pub(crate) employee_taxes: Option<Money>,
    pub(crate) employer_taxes: Option<Money>,
    pub(crate) company_debit: Option<Money>,
    pub(crate) individual_ids: Vec<String>,
    pub(crate) pay_frequencies: Vec<&'static str>,
    pub(crate) pay_group_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Earning {
    pub(crate) name: Option<&'static str>,
    #[serde(rename = "type")]
    pub(crate) kind: Option<&'static str>,
    pub(crate) amount: Option<i64>,
    pub(crate) hours: Option<f64>,
    pub(crate) currency: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Tax {
    pub(crate) name: Option<&'static str>,
    #[serde(rename = "type")]
    pub(crate) kind: Option<&'static str>,
    pub(crate) employer: Option<bool>,
    pub(crate) amount: Option<i64>,
    pub(crate) currency: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Deduction {
    pub(crate) name: Option<&'static str>,
    #[serde(rename = "type")]
    pub(crate) kind: Option<&'static str>,
    pub(crate) pre_tax: Option<bool>,
    pub(crate) amount: Option<i64>,
    pub(crate) currency: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct EmployerContribution {
    pub(crate) name: Option<&'static str>,
    #[serde(rename = "type")]
    pub(crate) kind: Option<&'static str>,
    pub(crate) amount: Option<i64>,
    pub(crate) currency: Option<&'static str>,
}

/// One pay statement.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PayStatement {
    pub(crate) individual_id: String,
    #[serde(rename = "type")]
    pub(crate) kind: Option<&'static str>,
    pub(crate) payment_method: Option<&'static str>,
    pub(crate) total_hours: Option<f64>,
    pub(crate) gross_pay: Option<Money>,
    pub(crate) net_pay: Option<Money>,
    pub(crate) earnings: Vec<Earning>,
    pub(crate) taxes: Vec<Tax>,
    pub(crate) employee_deductions: Vec<Deduction>,
    pub(crate) employer_contributions: Vec<EmployerContribution>,
}

/// The body of a `/employer/pay-statement` answer.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PayStatementPage {
    pub(crate) paging: Paging,
    pub(crate) pay_statements: Vec<PayStatement>,
}
