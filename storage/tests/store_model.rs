//! The store against a model: random requests (with repeated and
//! conflicting ids and batch ids), committed in random groupings, across
//! reopenings. After every step the in-memory statistics, the stored totals
//! and a fold of the raw sales must all equal a fold of the sales the model
//! says were stored, and every outcome must match the model's.

use std::collections::HashMap;

use proptest::prelude::*;
use sales_storage::json::parse_sale;
use sales_storage::{
    NewSale, Outcome, SaleId, Statistics, Store, StoreOptions, WriteRequest,
};

/// A sale drawn from a small space, so that ids collide often.
#[derive(Debug, Clone)]
struct Drawn {
    item: usize,
    quantity: u32,
    price: u32,
    day: u32,
    hour: u32,
    offset: usize,
    id: Option<u8>,
}

fn drawn() -> impl Strategy<Value = Drawn> {
    (
        0..3usize,
        1..20u32,
        0..50_000u32,
        1..29u32,
        0..24u32,
        0..3usize,
        proptest::option::of(0..6u8),
    )
        .prop_map(|(item, quantity, price, day, hour, offset, id)| Drawn {
            item,
            quantity,
            price,
            day,
            hour,
            offset,
            id,
        })
}

fn to_sale(drawn: &Drawn) -> NewSale {
    let items = ["papaya", "kiwi", "caf\u{e9}"];
    let offsets = ["+00:00", "-05:00", "+05:45"];
    let month = 1 + drawn.day % 3;
    let text = format!(
        r#"{{"item": "{}", "quantity": {}, "price": {}.{:04}, "date": "2023-{month:02}-{:02}T{:02}:30:00{}"}}"#,
        items[drawn.item],
        drawn.quantity,
        drawn.price / 10_000,
        drawn.price % 10_000,
        drawn.day,
        drawn.hour,
        offsets[drawn.offset]
    );
    let mut sale = parse_sale(&text).unwrap();
    sale.id = drawn.id.map(|id| {
        SaleId::parse_optional("id", &format!("sale-{id}"))
            .unwrap()
            .unwrap()
    });
    sale
}

#[derive(Debug, Clone)]
struct DrawnRequest {
    batch: Option<u8>,
    sales: Vec<Drawn>,
}

fn request() -> impl Strategy<Value = DrawnRequest> {
    (
        proptest::option::of(0..4u8),
        proptest::collection::vec(drawn(), 0..8),
    )
        .prop_map(|(batch, sales)| DrawnRequest { batch, sales })
}

/// The model: what must be stored, given everything sent so far.
#[derive(Default)]
struct Model {
    ids: HashMap<String, NewSale>,
    /// Each batch's sales and what they got the first time.
    batches: HashMap<String, (Vec<NewSale>, Vec<Outcome>)>,
    statistics: Statistics,
}

impl Model {
    fn apply(&mut self, request: &DrawnRequest) -> Vec<Outcome> {
        let sales: Vec<NewSale> = request.sales.iter().map(to_sale).collect();
        if let Some(batch) = request.batch {
            let key = format!("batch-{batch}");
            match self.batches.get(&key) {
                // Sent again: duplicates, but a conflict stays a conflict.
                Some((stored, first)) if *stored == sales => {
                    return first
                        .iter()
                        .map(|outcome| match outcome {
                            Outcome::Conflict => Outcome::Conflict,
                            _ => Outcome::Duplicate,
                        })
                        .collect();
                }
                Some(_) => return vec![Outcome::Conflict; sales.len()],
                None => {
                    let outcomes: Vec<Outcome> =
                        sales.iter().map(|sale| self.apply_sale(sale)).collect();
                    if !sales.is_empty() {
                        self.batches.insert(key, (sales, outcomes.clone()));
                    }
                    return outcomes;
                }
            }
        }
        sales.iter().map(|sale| self.apply_sale(sale)).collect()
    }

    fn apply_sale(&mut self, new: &NewSale) -> Outcome {
        if let Some(id) = &new.id {
            match self.ids.get(id.as_str()) {
                Some(stored) if stored.sale == new.sale => return Outcome::Duplicate,
                Some(_) => return Outcome::Conflict,
                None => {
                    self.ids.insert(id.as_str().to_string(), new.clone());
                }
            }
        }
        self.statistics.add_sale(&new.sale);
        Outcome::Stored
    }
}

fn to_request(drawn: &DrawnRequest) -> WriteRequest {
    let sales = drawn.sales.iter().map(to_sale).collect();
    match drawn.batch {
        Some(batch) => WriteRequest::batch(
            SaleId::parse_optional("batch", &format!("batch-{batch}"))
                .unwrap()
                .unwrap(),
            sales,
        ),
        None => WriteRequest::sales(sales),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn totals_always_equal_a_fold_of_the_stored_sales(
        rounds in proptest::collection::vec(proptest::collection::vec(request(), 1..5), 1..6)
    ) {
        let dir = tempfile::TempDir::new().unwrap();
        let options = StoreOptions { cache_bytes: 1024 * 1024, ..StoreOptions::default() };
        let mut model = Model::default();

        // Each round is one commit; the store is reopened between rounds.
        for round in &rounds {
            let mut store = Store::open(dir.path(), &options).unwrap();
            let requests: Vec<WriteRequest> = round.iter().map(to_request).collect();
            let expected: Vec<Vec<Outcome>> = round.iter().map(|r| model.apply(r)).collect();

            let outcomes = store.commit(&requests).unwrap();

            prop_assert_eq!(outcomes, expected);
            let live = store.statistics().read().unwrap().clone();
            prop_assert_eq!(&live, &model.statistics);
            prop_assert_eq!(&store.stored_totals().unwrap(), &model.statistics);
            prop_assert_eq!(&store.fold_sales().unwrap().0, &model.statistics);
        }
    }
}
