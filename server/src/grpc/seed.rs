//! The seed's `SalesService/ProcessSale`, unchanged on the wire. Its float
//! price is turned back into the decimal the sender meant (7.3, not
//! 7.300000190734863) before anything is stored.

use sales_proto::seed::sales_service_server::SalesService;
use sales_proto::seed::{ConfirmationReply, SalesMessage};
use sales_storage::{
    Item, NewSale, Outcome, Price, Quantity, Rejection, Sale, SaleDate, WriteRequest,
    WriterHandle,
};
use tonic::{Request, Response, Status};

use super::{invalid, store_failure, too_many_items};

pub(crate) struct SeedService {
    writer: WriterHandle,
}

impl SeedService {
    pub(crate) fn new(writer: WriterHandle) -> SeedService {
        SeedService { writer }
    }
}

fn to_sale(message: &SalesMessage) -> Result<Sale, Rejection> {
    Ok(Sale {
        item: Item::parse(&message.item)?,
        quantity: Quantity::new(i64::from(message.quantity))?,
        price: Price::from_f32(message.price)?,
        date: SaleDate::parse(&message.date)?,
    })
}

#[tonic::async_trait]
impl SalesService for SeedService {
    #[tracing::instrument(name = "ProcessSale", skip_all, fields(item = %request.get_ref().item))]
    async fn process_sale(
        &self,
        request: Request<SalesMessage>,
    ) -> Result<Response<ConfirmationReply>, Status> {
        let sale = to_sale(request.get_ref()).map_err(|rejection| {
            tracing::debug!(%rejection, "sale refused");
            invalid(&rejection)
        })?;
        let message = format!(
            "Sale stored: {} x {} at {} on {}",
            sale.quantity.get(),
            sale.item,
            sale.price,
            sale.date
        );

        let item = sale.item.to_string();
        let request = WriteRequest::sales(vec![NewSale { sale, id: None }]);
        let outcomes = self.writer.write(request).await.map_err(store_failure)?;
        if outcomes.contains(&Outcome::TooManyItems) {
            return Err(too_many_items(&item));
        }
        tracing::debug!("sale stored");
        Ok(Response::new(ConfirmationReply { message }))
    }
}
