//! Consumer lag as a gauge: high watermark minus position, per partition. Under
//! transactions a caught-up partition may show a lag of one (the commit marker).

use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use std::time::Duration;

pub fn report<C: ConsumerContext>(consumer: &BaseConsumer<C>, group: &str) -> i64 {
    let Ok(positions) = consumer.position() else {
        return 0;
    };
    let mut total = 0;
    for elem in positions.elements() {
        let Ok((_, high)) =
            consumer.fetch_watermarks(elem.topic(), elem.partition(), Duration::from_secs(2))
        else {
            continue;
        };
        let position = match elem.offset() {
            Offset::Offset(o) => o,
            _ => continue,
        };
        let lag = (high - position).max(0);
        total += lag;
        metrics::gauge!(
            "tributary_consumer_lag",
            "group" => group.to_owned(),
            "topic" => elem.topic().to_owned(),
            "partition" => elem.partition().to_string()
        )
        .set(lag as f64);
    }
    total
}
