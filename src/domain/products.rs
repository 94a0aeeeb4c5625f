//! A selection of Finch products (permission scopes), as picked with a form's checkboxes.
//!
//! Rules (finch-api.md §7): at least one product; only products Finch knows; `deduction` (the
//! deprecated alias of `benefits`) and `benefits` not both. A selection is kept in Finch's
//! documented order without repeats, so the same choice is always stored the same way.

use crate::domain::string_enum::string_enum;

string_enum! {
    /// A Finch product (a permission scope), as requested in a Connect session (finch-api.md §7).
    Product {
        Benefits => "benefits",
        Company => "company",
        /// Deprecated alias of `benefits`; still accepted by Finch.
        Deduction => "deduction",
        Directory => "directory",
        Documents => "documents",
        Employment => "employment",
        Individual => "individual",
        Payment => "payment",
        PayStatement => "pay_statement",
        Plans => "plans",
        PlansDependents => "plans_dependents",
        PlansEnrollments => "plans_enrollments",
        Recordkeeping => "recordkeeping",
        Ssn => "ssn",
    }
}

/// Longest unknown value quoted back in an error message.
const MAX_QUOTED: usize = 40;

/// Why a set of checkbox values is not a usable product selection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductsError {
    #[error("Choose at least one product.")]
    Empty,
    #[error("“{0}” is not a Finch product.")]
    Unknown(String),
    #[error(
        "Choose benefits or deduction, not both: deduction is Finch's older name for benefits."
    )]
    DeductionAndBenefits,
}

/// Parses checkbox values (or stored names) into a selection in Finch's order, without repeats.
pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Vec<Product>, ProductsError> {
    let mut chosen = Vec::new();
    for value in values {
        let product = value
            .parse::<Product>()
            .map_err(|_| ProductsError::Unknown(value.chars().take(MAX_QUOTED).collect()))?;
        if !chosen.contains(&product) {
            chosen.push(product);
        }
    }
    chosen.sort_by_key(|p| Product::ALL.iter().position(|q| q == p));
    if chosen.is_empty() {
        return Err(ProductsError::Empty);
    }
    if chosen.contains(&Product::Deduction) && chosen.contains(&Product::Benefits) {
        return Err(ProductsError::DeductionAndBenefits);
    }
    Ok(chosen)
}

/// The wire names of a selection, for storing in a `text[]` column.
pub fn names(products: &[Product]) -> Vec<String> {
    products.iter().map(|p| p.as_str().to_owned()).collect()
}

/// What a product gives access to, for labels next to checkboxes.
pub fn describe(product: Product) -> &'static str {
    match product {
        Product::Benefits => "Benefits and deductions",
        Product::Company => "Company details",
        Product::Deduction => "Deductions (older name of benefits)",
        Product::Directory => "Employee directory",
        Product::Documents => "Documents (W-4 forms)",
        Product::Employment => "Employment details",
        Product::Individual => "Individual details",
        Product::Payment => "Payments (pay runs)",
        Product::PayStatement => "Pay statements",
        Product::Plans => "Benefit plans",
        Product::PlansDependents => "Benefit plan dependents",
        Product::PlansEnrollments => "Benefit plan enrollments",
        Product::Recordkeeping => "Retirement recordkeeping",
        Product::Ssn => "Social Security numbers",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn checkbox_values_become_a_selection_in_finch_order() {
        assert_eq!(
            parse(["individual", "company", "directory", "company"]),
            Ok(vec![
                Product::Company,
                Product::Directory,
                Product::Individual
            ])
        );
    }

    #[test]
    fn the_rules_refuse_what_finch_would() {
        let cases: Vec<(Vec<&str>, ProductsError)> = vec![
            (vec![], ProductsError::Empty),
            (vec!["payroll"], ProductsError::Unknown("payroll".into())),
            (vec!["Company"], ProductsError::Unknown("Company".into())),
            (vec!["company", ""], ProductsError::Unknown(String::new())),
            (
                vec!["benefits", "deduction"],
                ProductsError::DeductionAndBenefits,
            ),
        ];
        for (values, expected) in cases {
            assert_eq!(parse(values.iter().copied()), Err(expected), "{values:?}");
        }
    }

    #[test]
    fn an_unknown_value_is_quoted_back_shortened() {
        let long = "x".repeat(500);
        assert_eq!(
            parse([long.as_str()]),
            Err(ProductsError::Unknown("x".repeat(MAX_QUOTED)))
        );
    }

    #[test]
    fn every_product_has_a_description_and_round_trips_through_its_name() {
        for product in Product::ALL {
            assert!(!describe(*product).is_empty());
            assert_eq!(parse([product.as_str()]), Ok(vec![*product]));
        }
        assert_eq!(
            names(&[Product::PayStatement, Product::Ssn]),
            ["pay_statement", "ssn"]
        );
    }

    proptest! {
        #[test]
        fn a_parsed_selection_is_non_empty_sorted_unique_and_never_both_aliases(
            picks in proptest::collection::vec(0..Product::ALL.len(), 0..20)
        ) {
            let values: Vec<&str> = picks.iter().map(|&i| Product::ALL[i].as_str()).collect();
            match parse(values.iter().copied()) {
                Ok(selection) => {
                    prop_assert!(!selection.is_empty());
                    let positions: Vec<usize> = selection
                        .iter()
                        .filter_map(|p| Product::ALL.iter().position(|q| q == p))
                        .collect();
                    prop_assert!(positions.windows(2).all(|w| w[0] < w[1]));
                    prop_assert!(
                        !(selection.contains(&Product::Benefits)
                            && selection.contains(&Product::Deduction))
                    );
                    prop_assert_eq!(parse(names(&selection).iter().map(String::as_str)), Ok(selection));
                }
                Err(ProductsError::Empty) => prop_assert!(values.is_empty()),
                Err(ProductsError::DeductionAndBenefits) => {
                    prop_assert!(values.contains(&"benefits") && values.contains(&"deduction"));
                }
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }
}
