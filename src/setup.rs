//! The server set-ups the comparison runs, each model at its best for the
//! question asked, and the command line that starts each one.
//!
//! A pool sized to the cores is what a pool is for CPU work; a thread per
//! connection is the same code at its best for waiting (a worker for every
//! client, so nobody queues); the loop inline, with offload workers, and as
//! one loop per core are the asynchronous side's answers. The Node.js
//! baseline (`baselines/node/`) is the reader's own platform on the same
//! contract: one loop, IMAGE on it or on `worker_threads`, or one process
//! per core with `node:cluster`.

/// One server configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The thread pool: `workers` threads, `queue` connections may wait.
    Pool { workers: usize, queue: usize },
    /// The thread pool with a worker (and queue room) for every client.
    ThreadPerConnection { threads: usize },
    /// One event loop, image jobs inline.
    Loop,
    /// One event loop, image jobs on `workers` offload threads.
    Offload { workers: usize },
    /// `loops` event loops, image jobs on `offload` threads (0: inline).
    Loops { loops: usize, offload: usize },
    /// One event loop whose connections are `async fn` on its hand-written
    /// executor (`--style async`), image jobs inline: beside `Loop`, what
    /// the executor costs.
    AsyncLoop,
    /// `node baselines/node/server.js`, image jobs on `offload`
    /// worker_threads (0: on the loop).
    Node { offload: usize },
    /// `processes` Node.js processes sharing one port (`--cluster`).
    NodeCluster { processes: usize },
}

/// How to start a set-up's server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// This binary again: `--serve MODEL ARGS...`.
    Ours(Vec<String>),
    /// `node baselines/node/server.js ARGS...`.
    Node(Vec<String>),
}

/// The pool's default queue, as `thread_pool_server` has it.
pub const DEFAULT_QUEUE: usize = thread_pool_server::Config::DEFAULT_QUEUE;

impl Setup {
    /// A pool of `workers` with the server's default queue.
    pub fn pool(workers: usize) -> Setup {
        Setup::Pool {
            workers,
            queue: DEFAULT_QUEUE,
        }
    }

    pub fn label(self) -> String {
        match self {
            Setup::Pool { workers: 1, .. } => "thread pool, 1 worker".to_string(),
            Setup::Pool { workers, .. } => format!("thread pool, {workers} workers"),
            Setup::ThreadPerConnection { threads } => format!("thread per connection, {threads}"),
            Setup::Loop => "event loop, inline".to_string(),
            Setup::Offload { workers } => format!("event loop + {workers} offload"),
            Setup::Loops { loops, offload: 0 } => format!("event loop x {loops}"),
            Setup::Loops { loops, offload } => format!("event loop x {loops} + {offload} offload"),
            Setup::AsyncLoop => "event loop, async fn".to_string(),
            Setup::Node { offload: 0 } => "node.js".to_string(),
            Setup::Node { offload } => format!("node.js + {offload} worker_threads"),
            Setup::NodeCluster { processes } => format!("node cluster x {processes}"),
        }
    }

    /// A short name for the chart's legend, the same for every client count.
    pub fn family(self) -> String {
        match self {
            Setup::Pool { workers, .. } => format!("pool, {workers} workers"),
            Setup::ThreadPerConnection { .. } => "thread per connection".to_string(),
            Setup::Loop | Setup::Offload { .. } => "event loop".to_string(),
            Setup::Loops { loops, .. } => format!("event loop x {loops}"),
            Setup::AsyncLoop => "event loop, async fn".to_string(),
            Setup::Node { .. } => "node.js".to_string(),
            Setup::NodeCluster { processes } => format!("node cluster x {processes}"),
        }
    }

    pub fn is_pool(self) -> bool {
        matches!(self, Setup::Pool { .. } | Setup::ThreadPerConnection { .. })
    }

    pub fn is_node(self) -> bool {
        matches!(self, Setup::Node { .. } | Setup::NodeCluster { .. })
    }

    /// How to start this set-up with room for `clients` connections.
    pub fn launch(self, clients: usize) -> Launch {
        match self {
            Setup::Node { offload } => Launch::Node(vec!["--offload".into(), offload.to_string()]),
            Setup::NodeCluster { processes } => {
                Launch::Node(vec!["--cluster".into(), processes.to_string()])
            }
            _ => Launch::Ours(self.serve_args(clients)),
        }
    }

    /// `--serve` arguments for this set-up, room for `clients` connections.
    fn serve_args(self, clients: usize) -> Vec<String> {
        let room = (clients + 16).max(event_loop_server::Config::DEFAULT_MAX_CONNECTIONS);
        let args: Vec<String> = match self {
            Setup::Pool { workers, queue } => vec![
                "thread_pool".into(),
                "--workers".into(),
                workers.to_string(),
                "--queue".into(),
                queue.to_string(),
            ],
            Setup::ThreadPerConnection { threads } => vec![
                "thread_pool".into(),
                "--workers".into(),
                threads.to_string(),
                "--queue".into(),
                threads.to_string(),
            ],
            Setup::Loop => vec!["event_loop".into()],
            Setup::Offload { workers } => vec![
                "event_loop".into(),
                "--offload-workers".into(),
                workers.to_string(),
            ],
            Setup::Loops { loops, offload } => vec![
                "event_loop".into(),
                "--loops".into(),
                loops.to_string(),
                "--offload-workers".into(),
                offload.to_string(),
            ],
            Setup::AsyncLoop => vec!["event_loop".into(), "--style".into(), "async".into()],
            Setup::Node { .. } | Setup::NodeCluster { .. } => Vec::new(),
        };
        let mut args = args;
        if !self.is_pool() && !self.is_node() {
            args.extend(["--max-connections".into(), room.to_string()]);
        }
        args
    }
}
