//! Totals per item and month, the figures every statistic is made of.

use std::collections::BTreeMap;

use crate::date::Month;
use crate::item::Item;
use crate::money::Revenue;
use crate::sale::Sale;

/// Running totals of a set of sales.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Number of sales.
    pub sales: u64,
    /// Units sold.
    pub quantity: u64,
    /// Sum of quantity × price, exact.
    pub revenue: Revenue,
}

impl Totals {
    /// Counts one more sale.
    pub fn add_sale(&mut self, sale: &Sale) {
        self.sales += 1;
        self.quantity += u64::from(sale.quantity.get());
        self.revenue = self.revenue.plus(sale.revenue());
    }

    /// Adds another set of totals.
    pub fn add(&mut self, other: &Totals) {
        self.sales += other.sales;
        self.quantity += other.quantity;
        self.revenue = self.revenue.plus(other.revenue);
    }

    /// Average units per sale, as the seed's `average_per_sale` reports it.
    /// A ratio, not money, so a float is the right type here.
    pub fn average_per_sale(&self) -> f64 {
        if self.sales == 0 {
            return 0.0;
        }
        self.quantity as f64 / self.sales as f64
    }
}

/// Totals for every item and month: the whole statistics report.
///
/// ```
/// use sales_storage::{json::parse_sale, Statistics};
/// let sale = parse_sale(r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": 4,
///                           "item": "papaya", "price": 7.3}"#).unwrap().sale;
/// let mut statistics = Statistics::default();
/// statistics.add_sale(&sale);
/// assert_eq!(statistics.to_json(), concat!(
///     r#"{"papaya":{"total_quantity":4,"total_revenue":29.2,"average_per_sale":4.0,"#,
///     r#""sales":1,"monthly":{"2023-01":{"total_quantity":4,"total_revenue":29.2,"#,
///     r#""average_per_sale":4.0,"sales":1}}}}"#));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statistics {
    items: BTreeMap<Item, BTreeMap<Month, Totals>>,
}

impl Statistics {
    /// Counts one sale.
    pub fn add_sale(&mut self, sale: &Sale) {
        self.month_mut(&sale.item, sale.date.month()).add_sale(sale);
    }

    /// Adds totals for one item and month.
    pub fn add(&mut self, item: &Item, month: Month, totals: &Totals) {
        self.month_mut(item, month).add(totals);
    }

    fn month_mut(&mut self, item: &Item, month: Month) -> &mut Totals {
        if !self.items.contains_key(item) {
            self.items.insert(item.clone(), BTreeMap::new());
        }
        let months = self.items.get_mut(item).expect("inserted above");
        months.entry(month).or_default()
    }

    /// Totals of one item and month, if it had sales.
    pub fn get(&self, item: &Item, month: Month) -> Option<&Totals> {
        self.items.get(item)?.get(&month)
    }

    /// Every (item, month, totals), sorted by item then month.
    pub fn entries(&self) -> impl Iterator<Item = (&Item, Month, &Totals)> {
        self.items
            .iter()
            .flat_map(|(item, months)| months.iter().map(move |(m, t)| (item, *m, t)))
    }

    /// Totals of one item over all months.
    pub fn item_total(&self, item: &Item) -> Totals {
        let mut total = Totals::default();
        for totals in self.items.get(item).into_iter().flat_map(BTreeMap::values) {
            total.add(totals);
        }
        total
    }

    /// Totals over every item and month.
    pub fn grand_total(&self) -> Totals {
        let mut total = Totals::default();
        for (_, _, totals) in self.entries() {
            total.add(totals);
        }
        total
    }

    /// Whether the item has any sale.
    pub fn has_item(&self, item: &Item) -> bool {
        self.items.contains_key(item)
    }

    /// Number of items with sales.
    pub fn item_count(&self) -> usize {
        self.items.len()
    }

    /// The report in the seed's JSON shape: an object keyed by item, each
    /// with `total_quantity`, `total_revenue`, `average_per_sale` and
    /// `monthly` (keyed by `"YYYY-MM"`), plus a `sales` count. Revenues are
    /// written as exact decimals.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64 + self.items.len() * 256);
        out.push('{');
        for (index, (item, months)) in self.items.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            push_json_string(&mut out, item.as_str());
            out.push(':');
            push_figures(&mut out, &self.item_total(item));
            // Reopen the item's object to add its months.
            out.pop();
            out.push_str(",\"monthly\":{");
            for (index, (month, totals)) in months.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&format!("\"{month}\":"));
                push_figures(&mut out, totals);
            }
            out.push_str("}}");
        }
        out.push('}');
        out
    }
}

fn push_figures(out: &mut String, totals: &Totals) {
    out.push_str(&format!(
        "{{\"total_quantity\":{},\"total_revenue\":{},\"average_per_sale\":{:?},\"sales\":{}}}",
        totals.quantity,
        totals.revenue.to_json_number(),
        totals.average_per_sale(),
        totals.sales
    ));
}

fn push_json_string(out: &mut String, text: &str) {
    // serde_json escapes exactly as JSON requires; a String cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse_sale;

    fn sale(item: &str, quantity: u32, price: &str, date: &str) -> Sale {
        parse_sale(&format!(
            r#"{{"item": "{item}", "quantity": {quantity}, "price": {price}, "date": "{date}"}}"#
        ))
        .unwrap()
        .sale
    }

    #[test]
    fn sums_per_item_and_month_exactly() {
        let mut statistics = Statistics::default();
        statistics.add_sale(&sale("papaya", 4, "7.3", "2023-01-31T06:03:17+00:00"));
        statistics.add_sale(&sale("papaya", 1, "0.1", "2023-01-01T00:00:00+00:00"));
        statistics.add_sale(&sale("papaya", 2, "0.2", "2023-02-01T00:00:00+00:00"));
        statistics.add_sale(&sale("kiwi", 3, "0.35", "2023-01-31T23:30:00-05:00"));

        let papaya = Item::parse("papaya").unwrap();
        let total = statistics.item_total(&papaya);
        assert_eq!((total.sales, total.quantity), (3, 7));
        assert_eq!(total.revenue.to_json_number(), "29.7");
        assert_eq!(total.average_per_sale(), 7.0 / 3.0);
        assert_eq!(statistics.grand_total().revenue.to_json_number(), "30.75");
    }

    #[test]
    fn json_has_the_seed_shape_and_parses_back() {
        let mut statistics = Statistics::default();
        statistics.add_sale(&sale("pa\\\"ya", 3, "0.35", "2023-01-31T23:30:00-05:00"));
        let parsed: serde_json::Value =
            serde_json::from_str(&statistics.to_json()).unwrap();
        let item = &parsed["pa\"ya"];
        assert_eq!(item["total_quantity"], 3);
        assert_eq!(item["total_revenue"].to_string(), "1.05");
        assert_eq!(item["average_per_sale"], 3.0);
        assert_eq!(
            item["monthly"]["2023-01"]["total_revenue"].to_string(),
            "1.05"
        );
        assert_eq!(item["monthly"]["2023-01"]["sales"], 1);
    }

    #[test]
    fn empty_statistics_are_an_empty_object() {
        assert_eq!(Statistics::default().to_json(), "{}");
    }
}
