//! Parser benchmark: how fast `batchsh::syntax::parse` reads a large script,
//! and that no input makes it slow (every case must stay linear).
//!
//! Run it with `cargo bench --bench parse` (release profile). It is a plain
//! program, not a test: it prints a table, asserts nothing about speed, and
//! fails only when the generated script does not parse. The figures are
//! recorded in BENCHMARKS.md.
//!
//! Sizes are in MB of 1,000,000 bytes; MB/s is input bytes over the median
//! time. The inputs are generated from a fixed seed, so every run parses the
//! same text.

use batchsh::diag::render;
use batchsh::syntax::parse;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

const MB: usize = 1_000_000;
/// The size of the main script and of every pathological input.
const SIZE: usize = 10 * MB;
const SEED: u64 = 0x00ba_7c45_2026_1122;
/// The throughput the issue asks for.
const TARGET_MB_S: f64 = 50.0;
/// A case whose single run takes longer than this is not repeated: it is
/// already far outside "well under a second".
const SLOW: Duration = Duration::from_secs(3);

fn main() {
    println!("command: cargo bench --bench parse");
    println!(
        "sizes in MB of {MB} bytes; times are wall clock; MB/s = bytes / median time; target {TARGET_MB_S} MB/s"
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        // Other work on the machine shows up as noise in the figures.
        println!("load average at start: {}", load.trim());
    }
    println!();

    main_script();
    pathological();
    linearity();
}

// ---------------------------------------------------------------------------
// The main figure: a 10 MB script of mixed statements.

fn main_script() {
    let src = mixed_script(SIZE, SEED);
    let stmts = match parse(&src) {
        Ok(s) => s,
        Err(e) => panic!("the generated script does not parse:\n{}", render(&src, &e)),
    };
    let mut mix: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &stmts {
        *mix.entry(s.kind.name()).or_default() += 1;
    }
    println!(
        "mixed script: {} bytes, {} lines, {} statements (avg {} bytes/statement)",
        src.len(),
        src.lines().count(),
        stmts.len(),
        src.len() / stmts.len().max(1)
    );
    let mix: Vec<String> = mix.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!("statement mix: {}", mix.join(", "));
    drop(stmts);

    let (warm, runs) = (2, 15);
    let st = time_runs(warm, runs, || parse(black_box(&src)));
    println!();
    println!(
        "parse of the mixed script ({warm} warm-ups, {} runs)",
        st.runs
    );
    println!(
        "  {:>10} {:>10} {:>10} {:>10} {:>12}",
        "min", "median", "max", "MB/s", "vs target"
    );
    let rate = mb_s(src.len(), st.median);
    println!(
        "  {:>10} {:>10} {:>10} {:>10.1} {:>12}",
        ms(st.min),
        ms(st.median),
        ms(st.max),
        rate,
        format!("{:.1}x", rate / TARGET_MB_S)
    );
    println!();
}

// ---------------------------------------------------------------------------
// Inputs that must fail (or parse) quickly.

struct Case {
    name: &'static str,
    src: String,
}

fn pathological() {
    let cases = pathological_inputs();
    println!(
        "pathological inputs (1 warm-up, median of up to 7 runs; render = diag::render of the error)"
    );
    println!(
        "  {:<40} {:>6} {:>10} {:>9} {:>9}  result",
        "case", "MB", "parse", "MB/s", "render"
    );
    for c in &cases {
        let st = time_runs(1, 7, || parse(black_box(&c.src)));
        let (render_time, result) = match parse(&c.src) {
            Ok(s) => ("-".to_string(), format!("Ok, {} statements", s.len())),
            Err(e) => {
                let rt = time_runs(1, 7, || render(black_box(&c.src), black_box(&e)));
                let r = render(&c.src, &e);
                let first = r.lines().next().unwrap_or("");
                let first = first.strip_prefix("error: ").unwrap_or(first);
                let loc = r.lines().nth(1).unwrap_or("").trim();
                (
                    ms(rt.median),
                    format!(
                        "Err: {} ({})",
                        clip(first, 44),
                        loc.trim_start_matches("--> ")
                    ),
                )
            }
        };
        println!(
            "  {:<40} {:>6.2} {:>10} {:>9} {:>9}  {}{}",
            c.name,
            c.src.len() as f64 / MB as f64,
            ms(st.median),
            rate(c.src.len(), st.median),
            render_time,
            result,
            if st.slow {
                "  SLOW (not repeated)"
            } else if st.median >= Duration::from_secs(1) {
                "  OVER 1 s"
            } else {
                ""
            }
        );
    }
    println!();
}

fn pathological_inputs() -> Vec<Case> {
    let mut cases = Vec::new();

    // An unterminated string right at the start, holding 10 MB in which
    // every quote is doubled (so the scanner never finds the closing one).
    let mut s = String::from("BATCH Customer FABRIC_COMMAND='echo ? ");
    fill(&mut s, "it''s O''Brien ", SIZE);
    cases.push(Case {
        name: "unterminated '...' (all quotes doubled)",
        src: s,
    });

    // The same with a dollar string: the body is valid statements.
    let mut s = String::from("STARTJOB STATEMENT NAME='x' COMMAND=$$ ");
    fill(
        &mut s,
        "BATCH Customer FABRIC_COMMAND=\"sync_instance Customer.?\";\n",
        SIZE,
    );
    cases.push(Case {
        name: "unterminated $$...$$ string",
        src: s,
    });

    // An unterminated block comment full of '*' and '/' that never meet.
    let mut s = String::from("/* ");
    fill(&mut s, "select * from t where a / 2 > 1 -- * / *\n", SIZE);
    cases.push(Case {
        name: "unterminated /* comment",
        src: s,
    });

    let mut s = String::from("BATCH x ");
    fill(&mut s, "(", SIZE);
    cases.push(Case {
        name: "BATCH x followed by 10 MB of '('",
        src: s,
    });

    // One BATCH with a 10 MB id list: it must parse.
    let mut s = String::from("BATCH C.(");
    let mut n = 1u64;
    while s.len() < SIZE {
        if n > 1 {
            s.push(',');
        }
        s.push('\'');
        s.push_str(&n.to_string());
        s.push('\'');
        n += 1;
    }
    s.push_str(") FABRIC_COMMAND='echo ?'");
    cases.push(Case {
        name: "10 MB id list BATCH C.('1','2',...)",
        src: s,
    });

    // Random printable ASCII, with a line feed now and then.
    let mut r = Lcg::new(SEED ^ 0xa5a5);
    let mut s = String::with_capacity(SIZE);
    while s.len() < SIZE {
        let c = r.below(96) as u8;
        s.push(if c == 95 { '\n' } else { char::from(b' ' + c) });
    }
    cases.push(Case {
        name: "random printable ASCII",
        src: s,
    });

    // Random printable ASCII behind a valid first statement, so the parser
    // starts on the noise after a ';'.
    let mut r = Lcg::new(SEED ^ 0x5a5a);
    let mut s = String::from("BATCH_LIST;\n");
    while s.len() < SIZE {
        let c = r.below(95) as u8;
        s.push(char::from(b' ' + c));
    }
    cases.push(Case {
        name: "BATCH_LIST; then random printable ASCII",
        src: s,
    });

    // The mixed script, valid up to a misspelt option in its last statement.
    let mut s = mixed_script(SIZE, SEED);
    s.push_str(";\nBATCH Customer FROM crm USING ('select id from c') FABRIC_COMAND=\"echo ?\"");
    cases.push(Case {
        name: "valid script, error in last statement",
        src: s,
    });

    // The same on one 10 MB line: the diagnostic must cut the line.
    let mut s = String::new();
    fill(&mut s, "BATCH Customer FABRIC_COMMAND='echo ?'; ", SIZE);
    s.push_str("BATCH Customer FABRIC_COMMAND='ech ?'");
    cases.push(Case {
        name: "one 10 MB line, error at its end",
        src: s,
    });

    // A 10 MB word: an unknown statement whose "did you mean" must not
    // compare 10 MB against every keyword character by character.
    let mut s = String::new();
    fill(&mut s, "BATCHX", SIZE);
    cases.push(Case {
        name: "a 10 MB word (unknown statement)",
        src: s,
    });

    // A 10 MB option name in a BATCH's WITH list.
    let mut s = String::from("BATCH Customer FABRIC_COMMAND='echo ?' WITH ");
    fill(&mut s, "MAX_NODE", SIZE);
    s.push_str("=1");
    cases.push(Case {
        name: "a 10 MB option name (unknown option)",
        src: s,
    });

    // A 10 MB word as a STATUS value, checked against the status names.
    let mut s = String::from("BATCH_LIST STATUS='");
    fill(&mut s, "DONEX", SIZE);
    s.push('\'');
    cases.push(Case {
        name: "a 10 MB STATUS value (invalid value)",
        src: s,
    });

    // Nothing but separators and comments: parses to no statement.
    let mut s = String::new();
    fill(&mut s, ";", SIZE);
    cases.push(Case {
        name: "10 MB of ';'",
        src: s,
    });
    let mut s = String::new();
    fill(&mut s, "-- a comment\n/* and a block */ ;\n", SIZE);
    cases.push(Case {
        name: "10 MB of comments and ';'",
        src: s,
    });

    // Statements nested as deep as allowed, repeated: the nested text is
    // parsed once per level.
    let mut s = String::new();
    let nested = nested_statement(8);
    while s.len() < SIZE {
        s.push_str(&nested);
        s.push_str(";\n");
    }
    cases.push(Case {
        name: "STARTJOB COMMAND nested 8 deep, repeated",
        src: s,
    });

    cases
}

/// A STARTJOB whose COMMAND holds a STARTJOB ... `depth` levels deep, each
/// level quoting the one inside with doubled single quotes.
fn nested_statement(depth: usize) -> String {
    let mut s = String::from("BATCH Customer FABRIC_COMMAND=\"sync_instance Customer.?\"");
    for level in 0..depth {
        let quoted = s.replace('\'', "''");
        s = format!("STARTJOB STATEMENT NAME='job{level}' COMMAND='{quoted}'");
    }
    s
}

fn fill(s: &mut String, unit: &str, size: usize) {
    while s.len() < size {
        s.push_str(unit);
    }
}

// ---------------------------------------------------------------------------
// Linearity: time per byte at 1, 2, 4 and 8 MB of the mixed script.

fn linearity() {
    println!("linearity: the mixed script at growing sizes (2 warm-ups, median of 11 runs)");
    println!(
        "  {:>5} {:>10} {:>9} {:>10} {:>9} {:>8} {:>12}",
        "MB", "bytes", "stmts", "median", "MB/s", "ns/B", "ns/B vs 1MB"
    );
    let mut base: Option<f64> = None;
    for mb in [1, 2, 4, 8] {
        let src = mixed_script(mb * MB, SEED);
        let n = parse(&src).map(|s| s.len()).unwrap_or_else(|e| {
            panic!("the generated script does not parse:\n{}", render(&src, &e))
        });
        let st = time_runs(2, 11, || parse(black_box(&src)));
        let ns_b = st.median.as_nanos() as f64 / src.len() as f64;
        let b = *base.get_or_insert(ns_b);
        println!(
            "  {:>5} {:>10} {:>9} {:>10} {:>9.1} {:>8.2} {:>12.2}",
            mb,
            src.len(),
            n,
            ms(st.median),
            mb_s(src.len(), st.median),
            ns_b,
            ns_b / b
        );
    }
}

// ---------------------------------------------------------------------------
// Timing.

struct Stats {
    min: Duration,
    median: Duration,
    max: Duration,
    runs: usize,
    /// A run took longer than [`SLOW`]; the case was not repeated.
    slow: bool,
}

/// Runs `f` `warm` times untimed, then `runs` times timed. The result is
/// dropped outside the timed region.
fn time_runs<T>(warm: usize, runs: usize, mut f: impl FnMut() -> T) -> Stats {
    for _ in 0..warm {
        let t = Instant::now();
        drop(black_box(f()));
        if t.elapsed() > SLOW {
            break;
        }
    }
    let mut times = Vec::with_capacity(runs);
    let mut slow = false;
    for _ in 0..runs {
        let t = Instant::now();
        let out = black_box(f());
        let e = t.elapsed();
        drop(out);
        times.push(e);
        if e > SLOW {
            slow = true;
            break;
        }
    }
    times.sort();
    Stats {
        min: times[0],
        median: times[times.len() / 2],
        max: times[times.len() - 1],
        runs: times.len(),
        slow,
    }
}

fn mb_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / MB as f64 / d.as_secs_f64().max(1e-9)
}

/// MB/s for the table; failures found in the first bytes read as instant.
fn rate(bytes: usize, d: Duration) -> String {
    let r = mb_s(bytes, d);
    if r >= 100_000.0 {
        "instant".to_string()
    } else {
        format!("{r:.1}")
    }
}

fn ms(d: Duration) -> String {
    let m = d.as_secs_f64() * 1e3;
    if m < 1.0 {
        format!("{m:.3} ms")
    } else {
        format!("{m:.1} ms")
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        let mut c: String = s.chars().take(n - 1).collect();
        c.push('…');
        c
    } else {
        s.to_string()
    }
}

// ---------------------------------------------------------------------------
// The mixed script generator. Deterministic: a 64-bit LCG from a fixed seed.

struct Lcg(u64);

impl Lcg {
    fn new(seed: u64) -> Lcg {
        Lcg(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // The high bits of an LCG are the good ones.
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const LUS: &[&str] = &[
    "Customer",
    "Account",
    "Device",
    "Order_Item",
    "AUTODATA_DELTA",
    "Invoice",
];
const IFACES: &[&str] = &["crm", "warehouse", "idsFile", "billing"];
const TABLES: &[&str] = &["customer", "account", "orders", "device", "invoice", "ids"];
const REGIONS: &[&str] = &["EU", "US", "APAC", "LATAM"];

/// Statements separated by ";\n" until the text is at least `size` bytes.
fn mixed_script(size: usize, seed: u64) -> String {
    let mut r = Lcg::new(seed);
    let mut s = String::with_capacity(size + 4096);
    let mut n = 0u64;
    while s.len() < size {
        if n > 0 {
            s.push_str(";\n");
        }
        if r.chance(15) {
            s.push_str(&format!(
                "-- {} step {n}: {}\n",
                r.pick(&["nightly", "ad hoc", "backfill", "O'Brien's"]),
                r.pick(&["sync", "export", "re-run failed; check later", "purge"])
            ));
        }
        if r.chance(5) {
            s.push_str(&format!("/* ticket OPS-{} */ ", r.below(10_000)));
        }
        statement(&mut r, n, &mut s);
        n += 1;
    }
    s
}

fn statement(r: &mut Lcg, n: u64, s: &mut String) {
    let text = match r.below(24) {
        0..=5 => batch(r, n),
        6 | 7 => migrate(r, n),
        8 => create_interface(r, n),
        9 => create_lu(r, n),
        10 => create_group(r, n),
        11 => batch_list(r),
        12 => format!(
            "{} {}",
            r.pick(&["BATCH_INFO", "BATCH_SUMMARY", "batch_info", "BATCH_HISTORY"]),
            bid(r)
        ),
        13 => batch_details(r),
        14 => batch_retry(r),
        15 | 16 => startjob(r, n),
        17 | 18 => schedule(r, n),
        19 => format!("EXPLAIN {}", batch(r, n)),
        20 => get(r),
        21 => match r.below(3) {
            0 => "BATCH_WAIT NAME='etl.*' SINCE='today' TIMEOUT='2h'".to_string(),
            1 => format!("BATCH_WAIT {} TIMEOUT=00:30:00", hex8(r)),
            _ => "BATCH_PURGE OLDER_THAN='30d' STATUS='DONE,CANCELLED'".to_string(),
        },
        22 => match r.below(3) {
            0 => format!(
                "JOBSTATUS STATEMENT 'nightly_{}' WITH UID='u{}'",
                n,
                r.below(9)
            ),
            1 => format!(
                "UPDATEJOB STATEMENT NAME='nightly_{n}' EXEC_INTERVAL='0 {} * * *' RESET_END_TIME=true",
                r.below(24)
            ),
            _ => "jobstatus batch_job".to_string(),
        },
        _ => format!("BATCH_APPEND '{}' {}", uuid(r), id_list(r, 6)),
    };
    s.push_str(&text);
}

fn lu(r: &mut Lcg) -> &'static str {
    r.pick(LUS)
}

fn hex8(r: &mut Lcg) -> String {
    format!("{:08x}", r.next() as u32)
}

fn uuid(r: &mut Lcg) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-9{:03x}-{:012x}",
        r.next() as u32,
        r.below(1 << 16),
        r.below(1 << 12),
        r.below(1 << 12),
        r.next() << 17 | r.next()
    )
}

fn bid(r: &mut Lcg) -> String {
    match r.below(3) {
        0 => String::new(),
        1 => format!("'{}'", uuid(r)),
        _ => hex8(r),
    }
}

/// `(id, ...)` of 1 to `max` ids of every written form.
fn id_list(r: &mut Lcg, max: u64) -> String {
    let count = 1 + r.below(max);
    let ids: Vec<String> = (0..count)
        .map(|_| match r.below(6) {
            0 | 1 => format!("'{}'", 1000 + r.below(100_000)),
            2 => format!("{}", 1000 + r.below(100_000)),
            3 => format!("\"SN-{:04}-A\"", r.below(10_000)),
            4 => format!("vip_{}", r.below(100)),
            _ => format!("'O''Brien-{}'", r.below(100)),
        })
        .collect();
    format!("({})", ids.join(", "))
}

fn target(r: &mut Lcg, lu: &str) -> String {
    let dc = if r.chance(20) {
        format!("@{}", r.pick(&["DC1", "DC2"]))
    } else {
        String::new()
    };
    let sel = match r.below(5) {
        0 | 1 => String::new(),
        2 => format!(".{}", r.pick(&["vip", "churned", "eu_gold"])),
        3 => format!(".{}", id_list(r, 12)),
        _ => format!(" {}", id_list(r, 4)),
    };
    format!("{lu}{dc}{sel}")
}

/// A source clause (with a leading space) and whether its SQL binds `?`.
fn source(r: &mut Lcg) -> (String, bool) {
    match r.below(4) {
        0 | 1 => (String::new(), false),
        2 => (" FROM FABRIC".to_string(), false),
        _ => {
            let t = r.pick(TABLES);
            if r.chance(50) {
                (
                    format!(
                        " FROM {}\n       USING ('select id from {t} where region = ? and updated_at >= :from_date')",
                        r.pick(IFACES)
                    ),
                    true,
                )
            } else {
                (
                    format!(
                        " FROM {} USING (\"select id from {t} where tier = 'gold' and note <> \"\"n/a\"\" limit {}\")",
                        r.pick(IFACES),
                        1 + r.below(1000)
                    ),
                    false,
                )
            }
        }
    }
}

fn command(r: &mut Lcg, lu: &str) -> String {
    match r.below(8) {
        0 | 1 => format!("FABRIC_COMMAND=\"sync_instance {lu}.?\""),
        2 => format!("fabric_command = \"delete_instance {lu}.?\""),
        3 => format!(
            "FABRIC_COMMAND = \"exec '/opt/etl/export_{}' '--id' ? '--since' :from_date\"",
            lu.to_ascii_lowercase()
        ),
        4 => "fabric_command='shell ''curl -fsS https://crm.example.com/refresh/?'''".to_string(),
        5 => format!(
            "FABRIC_COMMAND=\"sql {} 'update {} set synced_at = :batch_start where id = ?'\"",
            r.pick(IFACES),
            r.pick(TABLES)
        ),
        6 => "FABRIC_COMMAND='echo ?'".to_string(),
        _ => format!("FABRIC_COMMAND=\"sleep {} ?\"", r.below(500)),
    }
}

/// ` WITH ...` (leading space) or nothing.
fn with_options(r: &mut Lcg, n: u64, binds: bool) -> String {
    const OPTS: &[&str] = &[
        "ASYNC=true",
        "AFFINITY='node1,node2'",
        "JOB_AFFINITY=10.21.2.102",
        "GENERATE_IIDS_FIRST=\"TRUE\"",
        "ALLOW_MULTIPLE=false",
        "MAX_NODES=2",
        "MAX_WORKERS_PER_NODE=8",
        "ESTIMATED_ENTITIES_COUNT=120000",
        "MAX_RETRIES=3",
        "RETRY_DELAY=30s",
        "ENTITY_TIMEOUT='5m'",
        "MAX_FAILURES='10%'",
        "CHUNK_SIZE=500",
        "REPROCESS_HOURS=1.5",
        "TRUNC_START=true",
        "OPEN=true",
        "ON_DONE=\"notify-send \"\"batch $BID: $STATUS\"\"\"",
    ];
    let mut chosen: Vec<String> = Vec::new();
    if binds {
        chosen.push(if r.chance(50) {
            format!("BIND_PARAMS='{}'", r.pick(REGIONS))
        } else {
            format!("BIND_PARAMS_JSON='[\"{}\"]'", r.pick(REGIONS))
        });
    }
    if r.chance(30) {
        chosen.push(format!("NAME='series_{}'", n % 97));
    }
    for o in OPTS {
        if r.chance(12) {
            chosen.push((*o).to_string());
        }
    }
    if chosen.is_empty() {
        return String::new();
    }
    let mut s = String::from(if r.chance(50) { " WITH " } else { "\n  with " });
    for (k, o) in chosen.iter().enumerate() {
        if k > 0 {
            s.push_str(r.pick(&[" ", ", ", ",", "\n       "]));
        }
        s.push_str(o);
    }
    s
}

fn batch(r: &mut Lcg, n: u64) -> String {
    let lu = lu(r);
    let t = target(r, lu);
    let (src, binds) = source(r);
    let cmd = command(r, lu);
    let opts = with_options(r, n, binds);
    let kw = r.pick(&["BATCH", "batch", "Batch"]);
    let sep = r.pick(&[" ", "\n       "]);
    format!("{kw} {t}{src}{sep}{cmd}{opts}")
}

fn migrate(r: &mut Lcg, n: u64) -> String {
    let lu = lu(r);
    let t = target(r, lu);
    let (src, binds) = source(r);
    let opts = with_options(r, n, binds);
    format!("MIGRATE {t}{src}{opts}")
}

fn create_interface(r: &mut Lcg, n: u64) -> String {
    match r.below(3) {
        0 => format!("CREATE INTERFACE crm{n} TYPE SQLITE PATH 'data/crm_{n}.db'"),
        1 => format!(
            "CREATE OR REPLACE INTERFACE ids{n} TYPE CSV PATH \"data/ids_{n}\"\n       WITH HEADER=true, DELIMITER='{}'",
            r.pick(&["|", ",", ";"])
        ),
        _ => format!(
            "create interface wh{n} type postgres url 'postgres://etl@db{}.internal:5432/warehouse'",
            r.below(10)
        ),
    }
}

fn create_lu(r: &mut Lcg, n: u64) -> String {
    let name = format!("{}{n}", lu(r));
    let mut s = format!(
        "CREATE {}LU {name} FROM {}\n       ROOT ('select id from {}')   -- all instance ids",
        if r.chance(40) { "OR REPLACE " } else { "" },
        r.pick(IFACES),
        r.pick(TABLES)
    );
    for _ in 0..1 + r.below(5) {
        let t = r.pick(TABLES);
        match r.below(3) {
            0 => s.push_str(&format!(
                "\n       TABLE {t} ('select * from {t} where id = ?')"
            )),
            1 => s.push_str(&format!(
                "\n       TABLE {t}   (\"select * from {t} where customer_id = ? and note <> \"\"x\"\"\")"
            )),
            _ => s.push_str(&format!(
                "\n       TABLE {t} KEY (customer_id, kind) ('select * from {t} where customer_id = ? and kind <> ''old''')"
            )),
        }
    }
    s
}

fn create_group(r: &mut Lcg, n: u64) -> String {
    let lu = lu(r);
    if r.chance(50) {
        format!(
            "CREATE INSTANCE GROUP {lu}.g{n} USING ('select id from {} where tier = ''gold''')",
            r.pick(TABLES)
        )
    } else {
        format!(
            "CREATE OR REPLACE INSTANCE GROUP {lu}.churned{n} FROM warehouse\n       USING (\"select customer_id from churn where churned_at >= '2026-01-01'\")"
        )
    }
}

fn batch_list(r: &mut Lcg) -> String {
    match r.below(3) {
        0 => "BATCH_LIST".to_string(),
        1 => format!(
            "BATCH_LIST STATUS='ALL' FROM_DATE='2026-11-{:02}' TO_DATE=today FILTER='sync_instance' LIMIT={}",
            1 + r.below(28),
            1 + r.below(100)
        ),
        _ => "batch_list status=\"IN_PROGRESS,PAUSED,GENERATE_IID\"".to_string(),
    }
}

fn batch_details(r: &mut Lcg) -> String {
    match r.below(2) {
        0 => format!(
            "BATCH_DETAILS '{}' STATUS='FAILED' LIMIT=-1 SORT_BY_PROCESS_TIME=true",
            uuid(r)
        ),
        _ => format!(
            "BATCH_DETAILS ENTITIES='{},{}', AFFINITY='node{}'",
            r.below(10_000),
            r.below(10_000),
            1 + r.below(4)
        ),
    }
}

fn batch_retry(r: &mut Lcg) -> String {
    match r.below(3) {
        0 => "BATCH_RETRY".to_string(),
        1 => format!("BATCH_RETRY '{}' ALLOW_CANCELLED=true", uuid(r)),
        _ => format!("BATCH_RETRY {}", hex8(r)),
    }
}

fn startjob(r: &mut Lcg, n: u64) -> String {
    let lu = lu(r);
    match r.below(3) {
        0 => format!(
            "STARTJOB STATEMENT NAME='nightly_{n}' UID='u{}' AFFINITY='node1' EXEC_INTERVAL='0 {} * * *'\n       COMMAND=$$ BATCH {lu} FABRIC_COMMAND=\"sync_instance {lu}.?\" WITH NAME='it''s' $$",
            r.below(9),
            r.below(24)
        ),
        1 => format!(
            "startjob statement NAME=\"purge_{n}\", COMMAND='BATCH_PURGE OLDER_THAN=''30d''', EXEC_INTERVAL='2026-12-01 02:00:00'"
        ),
        _ => format!(
            "STARTJOB PROCESS NAME='cleanup_{n}' COMMAND='/usr/local/bin/cleanup.sh'\n       ARGS='{{\"0\": \"--older-than\", \"1\": \"{}d\"}}' EXEC_INTERVAL='1.00:00:00'",
            1 + r.below(60)
        ),
    }
}

fn schedule(r: &mut Lcg, n: u64) -> String {
    let lu = lu(r);
    match r.below(3) {
        0 => format!(
            "SCHEDULE nightly_{n} CRON '0 {} * * *' DO BATCH {lu} FABRIC_COMMAND=\"sync_instance {lu}.?\"",
            r.below(24)
        ),
        1 => format!(
            "schedule heartbeat_{n} every '{}m' do batch Device ('probe-{}') fabric_command='echo ?'",
            1 + r.below(59),
            r.below(100)
        ),
        _ => format!(
            "SCHEDULE purge_once_{n} AT '2026-12-{:02} 02:00:00'\n       DO BATCH {lu} FROM FABRIC FABRIC_COMMAND=\"delete_instance {lu}.?\" WITH ASYNC=true",
            1 + r.below(28)
        ),
    }
}

fn get(r: &mut Lcg) -> String {
    let lu = lu(r);
    match r.below(3) {
        0 => format!("GET {lu}.'{}'", r.below(100_000)),
        1 => format!("GET {lu}.{}", r.below(100_000)),
        _ => format!("get {lu}.\"SN-{:04}-A\"", r.below(10_000)),
    }
}
