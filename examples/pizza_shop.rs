//! Loosely coupled services around one topic: a front counter publishes
//! orders, and every service that cares reads them on its own terms.
//!
//! ```sh
//! cargo run --release --example pizza_shop
//! ```
//!
//! - Three kitchens (pizza, pasta, drinks), each in its own consumer group,
//!   read every order independently and make only their items.
//! - A delivery pool of three workers shares one group, `delivery`, with the
//!   cooperative-sticky assignor: the workers join one by one, partitions move
//!   between them (printed by a `RebalanceListener`), and the six partitions end
//!   up split two each. Every order is delivered exactly once across the pool.
//!
//! The log lives in a temporary directory, or in `$MOLDAU_DATA_DIR/pizza-shop`
//! if that is set (a second run then adds orders, and the groups resume).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use moldau::{
    Assignor, AutoOffsetReset, Consumer, ConsumerConfig, ConsumerRecord, Error, Log, LogConfig,
    PartitionId, ProducerConfig, RebalanceListener, Record, TopicPartition,
};

const TOPIC: &str = "orders";
const PARTITIONS: u32 = 6;
const ORDERS: u64 = 60;
const DELIVERY_GROUP: &str = "delivery";
const DELIVERY_WORKERS: usize = 3;
/// How long a poll waits before the worker checks whether it is done.
const POLL_TIMEOUT: Duration = Duration::from_millis(50);
/// Every wait gives up after this, so a bug fails the run instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(10);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A kitchen station; each is a separate service with its own group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Station {
    Pizza,
    Pasta,
    Drinks,
}

const STATIONS: [Station; 3] = [Station::Pizza, Station::Pasta, Station::Drinks];

const MENU: [(&str, Station); 11] = [
    ("margherita", Station::Pizza),
    ("diavola", Station::Pizza),
    ("quattro formaggi", Station::Pizza),
    ("funghi", Station::Pizza),
    ("carbonara", Station::Pasta),
    ("amatriciana", Station::Pasta),
    ("pesto", Station::Pasta),
    ("cola", Station::Drinks),
    ("lemonade", Station::Drinks),
    ("water", Station::Drinks),
    ("espresso", Station::Drinks),
];

impl Station {
    fn name(self) -> &'static str {
        match self {
            Station::Pizza => "pizza",
            Station::Pasta => "pasta",
            Station::Drinks => "drinks",
        }
    }

    fn group(self) -> String {
        format!("kitchen-{}", self.name())
    }

    fn of(item: &str) -> Option<Station> {
        MENU.iter().find(|(name, _)| *name == item).map(|(_, s)| *s)
    }
}

/// The menu items of the stations `which` accepts.
fn menu(which: impl Fn(Station) -> bool) -> Vec<&'static str> {
    MENU.iter()
        .filter(|(_, s)| which(*s))
        .map(|(item, _)| *item)
        .collect()
}

/// An order as it travels on the topic: `order-17: margherita, cola`, keyed
/// by `order-17`.
#[derive(Debug)]
struct Order {
    id: u64,
    items: Vec<String>,
}

impl Order {
    /// Order `id`'s items, picked from the menu by a fixed hash of the id so
    /// that runs repeat: one or two mains, and usually a drink.
    fn new(id: u64) -> Order {
        let mains: Vec<&str> = menu(|s| s != Station::Drinks);
        let drinks: Vec<&str> = menu(|s| s == Station::Drinks);
        let mut h = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16;
        let mut pick = |n: usize| {
            let v = h % n as u64;
            h /= n as u64;
            v as usize
        };
        let mut items = vec![mains[pick(mains.len())].to_owned()];
        if pick(4) == 0 {
            items.push(mains[pick(mains.len())].to_owned());
        }
        if pick(3) != 0 {
            items.push(drinks[pick(drinks.len())].to_owned());
        }
        Order { id, items }
    }

    fn key(&self) -> String {
        format!("order-{}", self.id)
    }

    fn to_record(&self) -> Record {
        Record::new(format!("{}: {}", self.key(), self.items.join(", "))).with_key(self.key())
    }

    fn parse(r: &ConsumerRecord) -> Result<Order, BoxError> {
        let malformed = || {
            format!(
                "malformed order at {}-{}@{}",
                r.topic, r.partition, r.offset
            )
        };
        let text = std::str::from_utf8(r.value.as_deref().unwrap_or_default())?;
        let (key, items) = text.split_once(": ").ok_or_else(malformed)?;
        let id = key.strip_prefix("order-").ok_or_else(malformed)?.parse()?;
        let items = items.split(", ").map(str::to_owned).collect();
        Ok(Order { id, items })
    }

    /// The items `station` makes.
    fn items_for(&self, station: Station) -> Vec<&str> {
        let mine = self.items.iter().map(String::as_str);
        mine.filter(|i| Station::of(i) == Some(station)).collect()
    }
}

fn main() -> Result<(), BoxError> {
    let started = Instant::now();
    // The temporary directory is removed when `_tmp` drops, after the log closes.
    let (_tmp, dir) = match std::env::var_os("MOLDAU_DATA_DIR") {
        // Absolute, as `Log::open` cannot fsync the parent "" of a bare relative name.
        Some(d) => (None, PathBuf::from(d).join("pizza-shop")),
        None => {
            let tmp = tempfile::Builder::new().prefix("pizza-shop").tempdir()?;
            let dir = tmp.path().to_path_buf();
            (Some(tmp), dir)
        }
    };
    let log = Log::open(&dir, LogConfig::default())?;
    match log.create_topic(TOPIC, PARTITIONS, None) {
        Ok(()) | Err(Error::TopicExists { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    // Order ids go on from an earlier run's, so each run can tell its own apart.
    let earlier: u64 = log
        .describe_topic(TOPIC)?
        .partitions
        .iter()
        .map(|p| p.end_offset.0)
        .sum();
    let run = earlier + 1..earlier + 1 + ORDERS;
    println!(
        "pizza shop in {}: topic {TOPIC} with {PARTITIONS} partitions, {earlier} earlier orders",
        dir.display()
    );

    let orders: Vec<Order> = run.clone().map(Order::new).collect();
    // Orders the delivery pool has delivered; each worker stops when it is all of them.
    let delivered = AtomicU64::new(0);
    let (kitchens, pool) = thread::scope(|s| -> Result<_, BoxError> {
        let kitchens: Vec<_> = STATIONS
            .into_iter()
            .map(|station| {
                let (log, run) = (&log, run.clone());
                s.spawn(move || kitchen(log, station, run))
            })
            .collect();

        // Workers join one at a time; each join rebalances the group, and the
        // next starts once the partitions are evenly split among those present.
        let (events, pool_events) = mpsc::channel();
        let mut holdings = BTreeMap::new();
        let mut workers = Vec::with_capacity(DELIVERY_WORKERS);
        for worker in 1..=DELIVERY_WORKERS {
            let (log, run, delivered) = (&log, run.clone(), &delivered);
            let events = events.clone();
            workers.push(s.spawn(move || deliver(log, worker, events, delivered, run)));
            if let Err(e) = wait_until_balanced(&pool_events, &mut holdings, worker) {
                // A worker that stopped early says why better than the timeout does.
                for w in workers.into_iter().filter(|w| w.is_finished()) {
                    joined(w)?;
                }
                return Err(e);
            }
        }
        println!("delivery pool settled: {}", describe_holdings(&holdings));

        front_counter(&log, &orders)?;

        let kitchens = kitchens
            .into_iter()
            .map(joined)
            .collect::<Result<Vec<_>, _>>()?;
        let pool = workers
            .into_iter()
            .map(joined)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((kitchens, pool))
    })?;

    check_kitchens(&orders, &kitchens)?;
    check_delivery(&run, &pool)?;

    let groups = STATIONS.iter().map(|s| s.group());
    for group in groups.chain([DELIVERY_GROUP.to_owned()]) {
        print_group(&log, &group)?;
    }
    println!("closing: each consumer leaves its group");
    for consumer in kitchens.into_iter().map(|k| k.consumer) {
        consumer.close()?;
    }
    for consumer in pool.into_iter().map(|w| w.consumer) {
        consumer.close()?;
    }
    log.close()?;
    println!("closed after {:.2}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// A scoped thread's result; a panic in the thread goes on in this one.
fn joined<T>(handle: thread::ScopedJoinHandle<'_, Result<T, BoxError>>) -> Result<T, BoxError> {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Publishes the orders, one event each, keyed by order id.
fn front_counter(log: &Log, orders: &[Order]) -> Result<(), BoxError> {
    let producer = log.producer(ProducerConfig::default())?;
    let started = Instant::now();
    let mut per_partition: BTreeMap<PartitionId, u64> = BTreeMap::new();
    for (i, order) in orders.iter().enumerate() {
        let sent = producer.send(TOPIC, order.to_record())?;
        *per_partition.entry(sent.partition).or_default() += 1;
        if i < 3 {
            println!(
                "[counter] {}: {} -> {}-{}@{}",
                order.key(),
                order.items.join(", "),
                sent.topic,
                sent.partition,
                sent.offset
            );
        }
    }
    let spread: Vec<String> = per_partition
        .iter()
        .map(|(p, n)| format!("{TOPIC}-{p}: {n}"))
        .collect();
    println!(
        "[counter] sent {} orders in {:.1} ms [{}]",
        orders.len(),
        started.elapsed().as_secs_f64() * 1e3,
        spread.join(", ")
    );
    Ok(())
}

/// What a kitchen did; it keeps its consumer, still in its group.
struct KitchenReport {
    station: Station,
    consumer: Consumer,
    seen: BTreeSet<u64>,
    made: u64,
}

/// One kitchen: reads every order in its own group and makes its items,
/// until it has seen each order of this run.
fn kitchen(log: &Log, station: Station, run: Range<u64>) -> Result<KitchenReport, BoxError> {
    let mut consumer = log.consumer(ConsumerConfig {
        auto_offset_reset: AutoOffsetReset::Earliest,
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    })?;
    consumer.subscribe(&station.group(), &[TOPIC])?;
    let deadline = Instant::now() + DEADLINE;
    let (mut seen, mut made) = (BTreeSet::new(), 0);
    while (seen.len() as u64) < ORDERS {
        if Instant::now() > deadline {
            let msg = format!("{} saw {} of {ORDERS} orders", station.group(), seen.len());
            return Err(msg.into());
        }
        let records = consumer.poll(POLL_TIMEOUT)?;
        for r in &records {
            let order = Order::parse(r)?;
            let mine = order.items_for(station);
            if !mine.is_empty() {
                println!(
                    "[{:<7}] {}: {}",
                    station.name(),
                    order.key(),
                    mine.join(", ")
                );
                made += mine.len() as u64;
            }
            if run.contains(&order.id) {
                seen.insert(order.id);
            }
        }
        if !records.is_empty() {
            consumer.commit()?;
        }
    }
    Ok(KitchenReport {
        station,
        consumer,
        seen,
        made,
    })
}

/// What a delivery worker did; it keeps its consumer, still in the group.
struct WorkerReport {
    worker: usize,
    consumer: Consumer,
    delivered: Vec<u64>,
    per_partition: BTreeMap<PartitionId, u64>,
}

/// One delivery worker of the shared group: delivers the orders of the
/// partitions it is assigned until the pool has delivered this run's orders.
fn deliver(
    log: &Log,
    worker: usize,
    events: Sender<PoolEvent>,
    pool_delivered: &AtomicU64,
    run: Range<u64>,
) -> Result<WorkerReport, BoxError> {
    let mut consumer = log.consumer(ConsumerConfig {
        auto_offset_reset: AutoOffsetReset::Earliest,
        enable_auto_commit: false,
        assignor: Assignor::CooperativeSticky,
        ..ConsumerConfig::default()
    })?;
    consumer.set_rebalance_listener(PoolListener {
        worker,
        events: Some(events),
    });
    consumer.subscribe(DELIVERY_GROUP, &[TOPIC])?;
    let deadline = Instant::now() + DEADLINE;
    let mut delivered = Vec::new();
    let mut per_partition = BTreeMap::new();
    // Polls even before orders arrive: a poll is when a member takes part in
    // rebalances.
    while pool_delivered.load(Ordering::Acquire) < ORDERS {
        if Instant::now() > deadline {
            let n = pool_delivered.load(Ordering::Acquire);
            return Err(format!("the delivery pool delivered {n} of {ORDERS} orders").into());
        }
        let records = consumer.poll(POLL_TIMEOUT)?;
        for r in &records {
            let order = Order::parse(r)?;
            *per_partition.entry(r.partition).or_default() += 1;
            if run.contains(&order.id) {
                delivered.push(order.id);
                pool_delivered.fetch_add(1, Ordering::AcqRel);
            }
        }
        // Committed before the next poll, which is where partitions can be
        // revoked: a partition's next owner starts after the last delivery.
        if !records.is_empty() {
            consumer.commit()?;
        }
    }
    Ok(WorkerReport {
        worker,
        consumer,
        delivered,
        per_partition,
    })
}

/// A change in a delivery worker's partitions, sent to the main thread.
struct PoolEvent {
    worker: usize,
    assigned: bool,
    partitions: Vec<TopicPartition>,
}

/// Prints a delivery worker's assignment changes and reports them to the
/// main thread, which waits for the pool to settle.
struct PoolListener {
    worker: usize,
    /// `None` once the main thread has stopped listening.
    events: Option<Sender<PoolEvent>>,
}

impl PoolListener {
    fn report(&mut self, assigned: bool, partitions: &[TopicPartition]) {
        let names: Vec<String> = partitions.iter().map(ToString::to_string).collect();
        let what = if assigned { "assigned" } else { "revoked " };
        println!("[delivery-{}] {what} {}", self.worker, names.join(", "));
        let event = PoolEvent {
            worker: self.worker,
            assigned,
            partitions: partitions.to_vec(),
        };
        if let Some(events) = &self.events {
            if events.send(event).is_err() {
                self.events = None;
            }
        }
    }
}

impl RebalanceListener for PoolListener {
    fn on_partitions_revoked(
        &mut self,
        _: &mut Consumer,
        partitions: &[TopicPartition],
    ) -> moldau::Result<()> {
        self.report(false, partitions);
        Ok(())
    }

    fn on_partitions_assigned(
        &mut self,
        _: &mut Consumer,
        partitions: &[TopicPartition],
    ) -> moldau::Result<()> {
        self.report(true, partitions);
        Ok(())
    }
}

/// Follows the pool's assignment changes until workers `1..=workers` each
/// hold an even share of the partitions.
fn wait_until_balanced(
    events: &Receiver<PoolEvent>,
    holdings: &mut BTreeMap<usize, BTreeSet<TopicPartition>>,
    workers: usize,
) -> Result<(), BoxError> {
    let deadline = Instant::now() + DEADLINE;
    let share = PARTITIONS as usize / workers;
    loop {
        let counts: Vec<usize> = (1..=workers)
            .map(|w| holdings.get(&w).map_or(0, BTreeSet::len))
            .collect();
        let held: usize = counts.iter().sum();
        if held == PARTITIONS as usize && counts.iter().all(|&n| n == share || n == share + 1) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let event = events.recv_timeout(left).map_err(|e| {
            let now = describe_holdings(holdings);
            format!("the delivery pool did not settle with {workers} workers ({e}): {now}")
        })?;
        let held = holdings.entry(event.worker).or_default();
        for tp in event.partitions {
            if event.assigned {
                held.insert(tp);
            } else {
                held.remove(&tp);
            }
        }
    }
}

fn describe_holdings(holdings: &BTreeMap<usize, BTreeSet<TopicPartition>>) -> String {
    let workers: Vec<String> = holdings
        .iter()
        .map(|(w, tps)| {
            let parts: Vec<String> = tps.iter().map(|tp| tp.partition.to_string()).collect();
            format!("delivery-{w} [{}]", parts.join(","))
        })
        .collect();
    workers.join(", ")
}

/// Each kitchen saw every order, and made exactly the items ordered from it.
fn check_kitchens(orders: &[Order], kitchens: &[KitchenReport]) -> Result<(), BoxError> {
    for k in kitchens {
        let ordered: usize = orders.iter().map(|o| o.items_for(k.station).len()).sum();
        println!(
            "{} saw {}/{} orders and made {} items ({ordered} ordered)",
            k.station.group(),
            k.seen.len(),
            orders.len(),
            k.made
        );
        if k.seen.len() != orders.len() || k.made != ordered as u64 {
            return Err(format!("{} missed orders or items", k.station.group()).into());
        }
    }
    Ok(())
}

/// Every order of the run was delivered by exactly one worker of the pool.
fn check_delivery(run: &Range<u64>, pool: &[WorkerReport]) -> Result<(), BoxError> {
    let mut times: BTreeMap<u64, usize> = run.clone().map(|id| (id, 0)).collect();
    for w in pool {
        let parts: Vec<String> = w
            .per_partition
            .iter()
            .map(|(p, n)| format!("{TOPIC}-{p}: {n}"))
            .collect();
        println!(
            "delivery-{} delivered {} orders [{}]",
            w.worker,
            w.delivered.len(),
            parts.join(", ")
        );
        for id in &w.delivered {
            *times.entry(*id).or_default() += 1;
        }
    }
    let missing: Vec<u64> = times
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(id, _)| *id)
        .collect();
    let repeated: Vec<u64> = times
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| *id)
        .collect();
    if !missing.is_empty() || !repeated.is_empty() {
        let msg = format!("delivery: missing orders {missing:?}, delivered twice {repeated:?}");
        return Err(msg.into());
    }
    println!(
        "delivery: each of the {} orders delivered exactly once across the pool",
        times.len()
    );
    Ok(())
}

fn print_group(log: &Log, group: &str) -> Result<(), BoxError> {
    let d = log.describe_group(group)?;
    let assignor = d.assignor.map_or("none", |a| a.name());
    let lag: u64 = d.offsets.iter().map(|p| p.lag).sum();
    println!(
        "group {group} (generation {}, {assignor}): total lag {lag}",
        d.generation
    );
    for m in &d.members {
        let parts: Vec<String> = m
            .assignment
            .iter()
            .map(|tp| tp.partition.to_string())
            .collect();
        println!("  {} owns {TOPIC} [{}]", m.member_id, parts.join(","));
    }
    let offsets: Vec<String> = d
        .offsets
        .iter()
        .map(|p| {
            let committed = p.committed.as_ref().map_or(0, |c| c.offset.0);
            format!("{}:{committed}/{}", p.partition.partition, p.end_offset)
        })
        .collect();
    println!("  committed/end per partition: {}", offsets.join(" "));
    Ok(())
}
