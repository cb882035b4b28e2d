//! The scheduler: priority, fairness between clients, bounds, displacement, cancellation,
//! and background requests slowed but never starved. Orders are observed one grant at a
//! time (concurrency 1, each admitted request finishes at once); nothing here measures
//! time.

use super::*;

fn limits(concurrency: usize, background: usize, depth: usize, per_client: usize) -> QueueLimits {
    QueueLimits {
        concurrency,
        background_concurrency: background,
        depth,
        per_client,
        refusals: QueueLimits::default().refusals,
    }
}

fn client(name: &str) -> ClientKey {
    ClientKey::Identified(name.into())
}

/// Yields until `n` requests wait in `queue`.
async fn until_waiting(queue: &SigningQueue, n: usize) {
    for _ in 0..10_000 {
        if queue.state.lock().waiting.len() == n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never {n} waiting");
}

/// Queues a request that, once admitted, reports `label` and finishes at once.
async fn queue_one(
    queue: &Arc<SigningQueue>,
    who: &str,
    priority: Priority,
    label: String,
    order: &tokio::sync::mpsc::UnboundedSender<String>,
) -> tokio::task::JoinHandle<Result<(), Shed>> {
    let before = queue.state.lock().waiting.len();
    let (queue2, who, order) = (Arc::clone(queue), client(who), order.clone());
    let task = tokio::spawn(async move {
        let permit = queue2.admit(who, priority).await?;
        order.send(label).unwrap();
        drop(permit);
        Ok(())
    });
    until_waiting(queue, before + 1).await;
    task
}

/// Releases `holder` and collects the labels in the order they were admitted.
async fn run_all(
    holder: Permit,
    tasks: Vec<tokio::task::JoinHandle<Result<(), Shed>>>,
    mut order: tokio::sync::mpsc::UnboundedReceiver<String>,
) -> Vec<String> {
    drop(holder);
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let mut seen = Vec::new();
    while let Ok(label) = order.try_recv() {
        seen.push(label);
    }
    seen
}

#[tokio::test]
async fn duties_are_served_before_background_requests() {
    let queue = SigningQueue::new(limits(1, 1, 100, 100), None);
    let holder = queue.admit(client("x"), Priority::Duty).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..3 {
        tasks.push(queue_one(&queue, "a", Priority::Background, format!("bg{i}"), &tx).await);
    }
    for i in 0..2 {
        tasks.push(queue_one(&queue, "b", Priority::Duty, format!("duty{i}"), &tx).await);
    }
    assert_eq!(
        run_all(holder, tasks, rx).await,
        ["duty0", "duty1", "bg0", "bg1", "bg2"]
    );
}

#[tokio::test]
async fn a_flooding_client_does_not_delay_another_clients_duties() {
    let queue = SigningQueue::new(limits(1, 1, 100, 100), None);
    let holder = queue.admit(client("x"), Priority::Duty).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..20 {
        tasks.push(queue_one(&queue, "flood", Priority::Duty, format!("f{i}"), &tx).await);
    }
    // Queued after all twenty of the flood's.
    for i in 0..2 {
        tasks.push(queue_one(&queue, "victim", Priority::Duty, format!("v{i}"), &tx).await);
    }
    let order = run_all(holder, tasks, rx).await;
    assert_eq!(&order[..4], ["f0", "v0", "f1", "v1"], "{order:?}");
    assert_eq!(order.len(), 22);
}

#[tokio::test]
async fn background_requests_are_slowed_but_never_starved() {
    let queue = SigningQueue::new(limits(1, 1, 1000, 1000), None);
    let holder = queue.admit(client("x"), Priority::Duty).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..3 {
        tasks.push(queue_one(&queue, "bg", Priority::Background, format!("bg{i}"), &tx).await);
    }
    let duties = 4 * DUTY_TURNS;
    for i in 0..duties {
        tasks.push(queue_one(&queue, "duty", Priority::Duty, format!("d{i}"), &tx).await);
    }
    let order = run_all(holder, tasks, rx).await;
    let background_at: Vec<usize> = order
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("bg"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(background_at.len(), 3, "{order:?}");
    // The holder was the first duty turn: the first background turn comes after
    // DUTY_TURNS - 1 more, then one after every DUTY_TURNS.
    assert_eq!(
        background_at,
        [DUTY_TURNS - 1, 2 * DUTY_TURNS, 3 * DUTY_TURNS + 1],
        "{order:?}"
    );
}

#[tokio::test]
async fn background_concurrency_leaves_room_for_duties() {
    let queue = SigningQueue::new(limits(4, 1, 100, 100), None);
    let bg = queue
        .admit(client("a"), Priority::Background)
        .await
        .unwrap();
    let waiting = {
        let queue = Arc::clone(&queue);
        tokio::spawn(async move { queue.admit(client("a"), Priority::Background).await })
    };
    until_waiting(&queue, 1).await;
    // Three places left for duties, though a background request waits.
    let mut duties = Vec::new();
    for _ in 0..3 {
        duties.push(queue.admit(client("b"), Priority::Duty).await.unwrap());
    }
    assert_eq!(queue.state.lock().running, [3, 1]);
    drop(bg);
    let second = waiting.await.unwrap().unwrap();
    assert_eq!(second.priority, Priority::Background);
}

#[tokio::test]
async fn bounds_shed_with_a_reason_and_floods_give_way_first() {
    let queue = SigningQueue::new(limits(1, 1, 4, 3), None);
    let holder = queue.admit(client("x"), Priority::Duty).await.unwrap();
    let spawn = |who: &'static str, priority| {
        let queue = Arc::clone(&queue);
        tokio::spawn(async move { queue.admit(client(who), priority).await.map(drop) })
    };
    let mut flood = Vec::new();
    for n in 1..=3 {
        flood.push(spawn("a", Priority::Background));
        until_waiting(&queue, n).await;
    }
    // The flood's own share is full.
    assert_eq!(
        queue.admit(client("a"), Priority::Background).await.err(),
        Some(Shed::ClientQueueFull)
    );
    let b = spawn("b", Priority::Background);
    until_waiting(&queue, 4).await;
    // Full. A third client's background request pushes out the flood's newest.
    let c = spawn("c", Priority::Background);
    let displaced = flood.pop().unwrap().await.unwrap();
    assert_eq!(displaced, Err(Shed::Displaced));
    until_waiting(&queue, 4).await;
    // A duty pushes out a background request (the flood's, which has the most).
    let duty = spawn("d", Priority::Duty);
    assert_eq!(flood.pop().unwrap().await.unwrap(), Err(Shed::Displaced));
    until_waiting(&queue, 4).await;
    // Now a, b, c have one background request each: nobody is heavier than b would be.
    assert_eq!(
        queue.admit(client("b"), Priority::Background).await.err(),
        Some(Shed::QueueFull)
    );
    drop(holder);
    // Everyone still queued is served: the duty first.
    duty.await.unwrap().unwrap();
    for task in [b, c, flood.pop().unwrap()] {
        task.await.unwrap().unwrap();
    }
    assert_eq!(queue.state.lock().running, [0, 0]);
}

#[tokio::test]
async fn a_duty_never_displaces_another_duty_of_a_lighter_client() {
    let queue = SigningQueue::new(limits(1, 1, 2, 10), None);
    let _holder = queue.admit(client("x"), Priority::Duty).await.unwrap();
    let spawn = |who: &'static str| {
        let queue = Arc::clone(&queue);
        tokio::spawn(async move { queue.admit(client(who), Priority::Duty).await.map(drop) })
    };
    let _a = spawn("a");
    until_waiting(&queue, 1).await;
    let _b = spawn("b");
    until_waiting(&queue, 2).await;
    assert_eq!(
        queue.admit(client("c"), Priority::Background).await.err(),
        Some(Shed::QueueFull),
        "a background request never displaces a duty"
    );
    assert_eq!(
        queue.admit(client("c"), Priority::Duty).await.err(),
        Some(Shed::QueueFull),
        "a and b have one each: nobody gives way"
    );
}

#[tokio::test]
async fn a_caller_that_stops_waiting_leaves_the_queue() {
    let queue = SigningQueue::new(limits(1, 1, 10, 10), None);
    let holder = queue.admit(client("x"), Priority::Duty).await.unwrap();
    let gone = {
        let queue = Arc::clone(&queue);
        tokio::spawn(async move { queue.admit(client("a"), Priority::Duty).await.map(drop) })
    };
    until_waiting(&queue, 1).await;
    gone.abort();
    let _ = gone.await;
    assert_eq!(queue.state.lock().waiting.len(), 0);
    drop(holder);
    assert_eq!(queue.state.lock().running, [0, 0]);
    // And the place is free for the next one.
    let _next = queue.admit(client("b"), Priority::Duty).await.unwrap();
}

#[tokio::test]
async fn the_metrics_follow_the_queue() {
    let registry = prometheus::Registry::new();
    let metrics = QueueMetrics::register(&registry).unwrap();
    let queue = SigningQueue::new(limits(1, 1, 1, 1), Some(metrics));
    let holder = queue.admit(client("x"), Priority::Duty).await.unwrap();
    let waiter = {
        let queue = Arc::clone(&queue);
        tokio::spawn(async move {
            queue
                .admit(client("a"), Priority::Background)
                .await
                .map(drop)
        })
    };
    until_waiting(&queue, 1).await;
    let _ = queue.admit(client("a"), Priority::Background).await;
    let text = {
        let mut buf = Vec::new();
        let encoder = prometheus::TextEncoder::new();
        prometheus::Encoder::encode(&encoder, &registry.gather(), &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    };
    for line in [
        "keyguard_signing_queue_depth{priority=\"background\"} 1",
        "keyguard_signing_queue_depth{priority=\"duty\"} 0",
        "keyguard_signing_queue_running{priority=\"duty\"} 1",
        "keyguard_signing_queue_rejected_total{reason=\"client_queue_full\"} 1",
        "keyguard_signing_queue_rejected_total{reason=\"queue_full\"} 0",
        "keyguard_signing_queue_wait_seconds_count{priority=\"duty\"} 1",
    ] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
    drop(holder);
    waiter.await.unwrap().unwrap();
}
