//! The store's schema, as an ordered list of migrations. The version lives
//! in `PRAGMA user_version`; opening a store applies the missing migrations
//! in one transaction, so a store is never left half upgraded. Migrations
//! are append-only: a released one is never edited, a change is a new one.

use super::APPLICATION_ID;
use crate::store::{Upgrade, Upgrades};
use rusqlite::Connection;

/// Migration N (1-based) takes a store from version N-1 to N.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the catalog (SPEC §3). Names compare without regard to case.
    "CREATE TABLE interfaces (
        name        TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
        kind        TEXT NOT NULL CHECK (kind IN ('SQLITE', 'CSV', 'POSTGRES')),
        location    TEXT NOT NULL,           -- absolute path, or URL
        options     TEXT NOT NULL DEFAULT '{}', -- JSON: {\"HEADER\": true, \"DELIMITER\": \",\"}
        created_at  TEXT NOT NULL            -- RFC 3339 UTC
    );
    CREATE TABLE lus (
        name        TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
        interface   TEXT NOT NULL COLLATE NOCASE,
        root_sql    TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE lu_tables (
        lu          TEXT NOT NULL COLLATE NOCASE REFERENCES lus (name) ON DELETE CASCADE,
        position    INTEGER NOT NULL,
        name        TEXT NOT NULL COLLATE NOCASE,
        key_columns TEXT NOT NULL,           -- JSON array; [] means the first column
        sql         TEXT NOT NULL,
        PRIMARY KEY (lu, name)
    );
    CREATE TABLE instance_groups (
        lu          TEXT NOT NULL COLLATE NOCASE REFERENCES lus (name) ON DELETE CASCADE,
        name        TEXT NOT NULL COLLATE NOCASE,
        interface   TEXT COLLATE NOCASE,     -- NULL: the LU's interface
        sql         TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        PRIMARY KEY (lu, name)
    );",
    // 2: batches (SPEC §4, §6, §7, §13). Counters on the batch row are kept
    // by the executor in the same transaction as the entity rows they
    // count, so BATCH_LIST and BATCH_SUMMARY never scan entity rows and
    // total = waiting + in_process + completed + failed + cancelled holds
    // at every commit.
    "CREATE TABLE batches (
        bid            TEXT PRIMARY KEY,
        command        TEXT NOT NULL,          -- the BATCH statement, canonical text
        lu             TEXT NOT NULL,
        fabric_command TEXT NOT NULL,          -- the per-entity command, canonical text
        source         TEXT NOT NULL,          -- JSON: where the ids come from
        arguments      TEXT NOT NULL,          -- JSON: options by canonical name, typed
        status         TEXT NOT NULL,
        execution_id   TEXT NOT NULL,          -- the current (or last) execution
        created_by     TEXT NOT NULL,          -- node that created it
        creation_time  TEXT NOT NULL,          -- RFC 3339 UTC, as every time here
        start_time     TEXT,
        end_time       TEXT,
        error          TEXT,
        extra_stats    TEXT,                   -- JSON, Fabric's shape
        total          INTEGER NOT NULL DEFAULT 0,
        ids_complete   INTEGER NOT NULL DEFAULT 0, -- 1: the source is exhausted, total is final
        estimated_total INTEGER,
        waiting        INTEGER NOT NULL DEFAULT 0,
        in_process     INTEGER NOT NULL DEFAULT 0,
        completed      INTEGER NOT NULL DEFAULT 0,
        failed         INTEGER NOT NULL DEFAULT 0,
        cancelled      INTEGER NOT NULL DEFAULT 0,
        added          INTEGER NOT NULL DEFAULT 0,
        updated        INTEGER NOT NULL DEFAULT 0,
        unchanged      INTEGER NOT NULL DEFAULT 0,
        max_workers    INTEGER,                -- BATCH_EDIT MAX_WORKERS_PER_NODE
        requested      TEXT,                   -- PAUSE or CANCEL, asked by another process
        owner_node     TEXT,                   -- the process running it now, if any
        owner_pid      INTEGER,
        heartbeat_at   TEXT                    -- its last sign of life
    );
    CREATE INDEX batches_by_creation ON batches (creation_time);
    CREATE TABLE batch_entities (
        bid             TEXT NOT NULL REFERENCES batches (bid) ON DELETE CASCADE,
        seq             INTEGER NOT NULL,      -- order of arrival from the source
        entity_id       TEXT NOT NULL,
        status          TEXT NOT NULL,         -- WAITING IN_PROCESS COMPLETED FAILED CANCELLED
        attempts        INTEGER NOT NULL DEFAULT 0,
        retry_at        TEXT,                  -- a retried entity waits until then
        node            TEXT,
        start_time      TEXT,
        end_time        TEXT,
        process_time_ms INTEGER,
        result          TEXT,                  -- JSON text, as Fabric stores it
        error           TEXT,
        PRIMARY KEY (bid, seq)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX batch_entities_by_id ON batch_entities (bid, entity_id);
    CREATE INDEX batch_entities_by_status ON batch_entities (bid, status, seq);
    CREATE TABLE batch_events (
        id           INTEGER PRIMARY KEY,
        bid          TEXT NOT NULL REFERENCES batches (bid) ON DELETE CASCADE,
        execution_id TEXT,
        time         TEXT NOT NULL,
        node         TEXT,
        status       TEXT NOT NULL,
        note         TEXT
    );
    CREATE INDEX batch_events_by_bid ON batch_events (bid, id);
    -- Per node counters of a batch, for BATCH_SUMMARY's node and DC rows.
    CREATE TABLE batch_nodes (
        bid        TEXT NOT NULL REFERENCES batches (bid) ON DELETE CASCADE,
        node       TEXT NOT NULL,
        dc         TEXT NOT NULL,
        start_time TEXT NOT NULL,
        end_time   TEXT,
        completed  INTEGER NOT NULL DEFAULT 0,
        failed     INTEGER NOT NULL DEFAULT 0,
        added      INTEGER NOT NULL DEFAULT 0,
        updated    INTEGER NOT NULL DEFAULT 0,
        unchanged  INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (bid, node)
    );
    -- Progress samples (entities finished so far, per node, every few
    -- seconds), for the pace over the last 100 s.
    CREATE TABLE batch_progress (
        bid     TEXT NOT NULL REFERENCES batches (bid) ON DELETE CASCADE,
        node    TEXT NOT NULL,
        time_ms INTEGER NOT NULL,
        done    INTEGER NOT NULL,
        PRIMARY KEY (bid, node, time_ms)
    ) WITHOUT ROWID;",
    // 3: entity rows keyed by a small batch number instead of the 36-byte
    // bid (in the table and both its indexes), no foreign-key lookup per
    // inserted row, and a status index that leaves COMPLETED rows out: it
    // finds the entities still to do (claims, retries, cancels, BATCH_IN_PROCESS)
    // without growing by every finished one. Queries that want it say
    // `status <> 'COMPLETED'`, the index's condition, in so many words.
    "ALTER TABLE batches ADD COLUMN batch_no INTEGER;
    UPDATE batches SET batch_no = rowid;
    CREATE UNIQUE INDEX batches_by_no ON batches (batch_no);
    CREATE TABLE batch_entities_3 (
        batch           INTEGER NOT NULL,      -- batches.batch_no
        seq             INTEGER NOT NULL,      -- order of arrival from the source
        entity_id       TEXT NOT NULL,
        status          TEXT NOT NULL,         -- WAITING IN_PROCESS COMPLETED FAILED CANCELLED
        attempts        INTEGER NOT NULL DEFAULT 0,
        retry_at        TEXT,                  -- a retried entity waits until then
        node            TEXT,
        start_time      TEXT,
        end_time        TEXT,
        process_time_ms INTEGER,
        result          TEXT,                  -- JSON text, as Fabric stores it
        error           TEXT,
        PRIMARY KEY (batch, seq)
    ) WITHOUT ROWID;
    INSERT INTO batch_entities_3
        SELECT b.batch_no, e.seq, e.entity_id, e.status, e.attempts, e.retry_at, e.node,
               e.start_time, e.end_time, e.process_time_ms, e.result, e.error
        FROM batch_entities AS e JOIN batches AS b ON b.bid = e.bid;
    DROP TABLE batch_entities;
    ALTER TABLE batch_entities_3 RENAME TO batch_entities;
    CREATE UNIQUE INDEX batch_entities_by_id ON batch_entities (batch, entity_id);
    CREATE INDEX batch_entities_open ON batch_entities (batch, status, seq)
        WHERE status <> 'COMPLETED';",
    // 4: each entity row written once in the common case. Ids taken from
    // the source and handed to workers at once are stored together, one
    // `batch_claims` row per step (a JSON array of the ids of `first_seq`,
    // `first_seq + 1`, ...; null where that sequence number is not part of
    // the claim), and an entity's row is written when its outcome is known.
    // `open` counts the claimed entities still without a row; the claim row
    // goes when it reaches 0. `batch_claimed` shows them as IN_PROCESS rows.
    // Duplicate ids are dropped before they are stored (the executor keeps
    // the ids it has seen in a temporary database of its own), so the
    // unique index on (batch, entity_id), a second write per entity, goes.
    "DROP INDEX batch_entities_by_id;
    CREATE TABLE batch_claims (
        batch      INTEGER NOT NULL,   -- batches.batch_no
        first_seq  INTEGER NOT NULL,
        node       TEXT NOT NULL,
        start_time TEXT NOT NULL,
        open       INTEGER NOT NULL,
        ids        TEXT NOT NULL,      -- JSON array
        PRIMARY KEY (batch, first_seq)
    ) WITHOUT ROWID;
    CREATE VIEW batch_claimed AS
        SELECT c.batch AS batch, c.first_seq + j.key AS seq, j.value AS entity_id,
               c.node AS node, c.start_time AS start_time
        FROM batch_claims AS c, json_each(c.ids) AS j
        WHERE j.type = 'text'
            AND NOT EXISTS (SELECT 1 FROM batch_entities AS e
                            WHERE e.batch = c.batch AND e.seq = c.first_seq + j.key);",
    // 5: the times of entity rows and claims are integers, milliseconds
    // since 1970-01-01 UTC, as the executor measures them: a fast batch
    // formatted and stored two RFC 3339 texts per entity. The times of
    // batches, nodes and events stay RFC 3339 texts.
    "DROP VIEW batch_claimed;
    CREATE TABLE batch_entities_5 (
        batch           INTEGER NOT NULL,      -- batches.batch_no
        seq             INTEGER NOT NULL,      -- order of arrival from the source
        entity_id       TEXT NOT NULL,
        status          TEXT NOT NULL,         -- WAITING IN_PROCESS COMPLETED FAILED CANCELLED
        attempts        INTEGER NOT NULL DEFAULT 0,
        retry_at        INTEGER,               -- ms since 1970-01-01 UTC; a retried entity waits until then
        node            TEXT,
        start_time      INTEGER,               -- ms since 1970-01-01 UTC
        end_time        INTEGER,               -- ms since 1970-01-01 UTC
        process_time_ms INTEGER,
        result          TEXT,                  -- JSON text, as Fabric stores it
        error           TEXT,
        PRIMARY KEY (batch, seq)
    ) WITHOUT ROWID;
    INSERT INTO batch_entities_5
        SELECT batch, seq, entity_id, status, attempts,
               CAST(round(unixepoch(retry_at, 'subsec') * 1000) AS INTEGER), node,
               CAST(round(unixepoch(start_time, 'subsec') * 1000) AS INTEGER),
               CAST(round(unixepoch(end_time, 'subsec') * 1000) AS INTEGER),
               process_time_ms, result, error
        FROM batch_entities;
    DROP TABLE batch_entities;
    ALTER TABLE batch_entities_5 RENAME TO batch_entities;
    CREATE INDEX batch_entities_open ON batch_entities (batch, status, seq)
        WHERE status <> 'COMPLETED';
    CREATE TABLE batch_claims_5 (
        batch      INTEGER NOT NULL,   -- batches.batch_no
        first_seq  INTEGER NOT NULL,
        node       TEXT NOT NULL,
        start_time INTEGER NOT NULL,   -- ms since 1970-01-01 UTC
        open       INTEGER NOT NULL,
        ids        TEXT NOT NULL,      -- JSON array
        PRIMARY KEY (batch, first_seq)
    ) WITHOUT ROWID;
    INSERT INTO batch_claims_5
        SELECT batch, first_seq, node,
               CAST(round(unixepoch(start_time, 'subsec') * 1000) AS INTEGER), open, ids
        FROM batch_claims;
    DROP TABLE batch_claims;
    ALTER TABLE batch_claims_5 RENAME TO batch_claims;
    CREATE VIEW batch_claimed AS
        SELECT c.batch AS batch, c.first_seq + j.key AS seq, j.value AS entity_id,
               c.node AS node, c.start_time AS start_time
        FROM batch_claims AS c, json_each(c.ids) AS j
        WHERE j.type = 'text'
            AND NOT EXISTS (SELECT 1 FROM batch_entities AS e
                            WHERE e.batch = c.batch AND e.seq = c.first_seq + j.key);",
    // 6: the integer times of migration 5 say their unit in their names,
    // as `process_time_ms` does: `start_time_ms`, `end_time_ms`,
    // `retry_at_ms`. A batchsh from before version 5 that is still running
    // while a newer one upgrades the store would otherwise go on writing
    // RFC 3339 text into them, unnoticed (SQLite keeps text that is not a
    // number as text); with the columns renamed, its statements fail and
    // say so.
    "DROP VIEW batch_claimed;
    ALTER TABLE batch_entities RENAME COLUMN start_time TO start_time_ms;
    ALTER TABLE batch_entities RENAME COLUMN end_time TO end_time_ms;
    ALTER TABLE batch_entities RENAME COLUMN retry_at TO retry_at_ms;
    ALTER TABLE batch_claims RENAME COLUMN start_time TO start_time_ms;
    CREATE VIEW batch_claimed AS
        SELECT c.batch AS batch, c.first_seq + j.key AS seq, j.value AS entity_id,
               c.node AS node, c.start_time_ms AS start_time_ms
        FROM batch_claims AS c, json_each(c.ids) AS j
        WHERE j.type = 'text'
            AND NOT EXISTS (SELECT 1 FROM batch_entities AS e
                            WHERE e.batch = c.batch AND e.seq = c.first_seq + j.key);",
    // 7: nodes (SPEC §7, §13). Every process that takes part in batches
    // registers under a worker id of its own (a synchronous run: one per
    // run) and heartbeats it; claims name the worker that holds them, so
    // that a dead node's claims, and only those, wait again, and a node
    // declared DEAD by another writes nothing more.
    "CREATE TABLE nodes (
        worker_id    TEXT PRIMARY KEY,
        node         TEXT NOT NULL,          -- node name (--node; the host name by default)
        dc           TEXT NOT NULL,
        host         TEXT NOT NULL,
        pid          INTEGER NOT NULL,
        kind         TEXT NOT NULL CHECK (kind IN ('synchronous', 'worker', 'tick')),
        status       TEXT NOT NULL CHECK (status IN ('RUNNING', 'STOPPING', 'STOPPED', 'DEAD')),
        workers      INTEGER NOT NULL DEFAULT 0,
        started_at   TEXT NOT NULL,          -- RFC 3339 UTC
        heartbeat_at TEXT NOT NULL
    );
    ALTER TABLE batches ADD COLUMN owner_worker TEXT;  -- nodes.worker_id of the run that owns it
    ALTER TABLE batch_claims ADD COLUMN worker TEXT;   -- nodes.worker_id holding the claim
    ALTER TABLE batch_entities ADD COLUMN worker TEXT; -- while IN_PROCESS: nodes.worker_id
    DROP VIEW batch_claimed;
    CREATE VIEW batch_claimed AS
        SELECT c.batch AS batch, c.first_seq + j.key AS seq, j.value AS entity_id,
               c.node AS node, c.start_time_ms AS start_time_ms, c.worker AS worker
        FROM batch_claims AS c, json_each(c.ids) AS j
        WHERE j.type = 'text'
            AND NOT EXISTS (SELECT 1 FROM batch_entities AS e
                            WHERE e.batch = c.batch AND e.seq = c.first_seq + j.key);",
    // 8: where batches run (SPEC §4, §7, §8). A batch keeps its placement
    // (AFFINITY, JOB_AFFINITY, @DC, MAX_NODES) for the workers to read; a
    // node its host's addresses (an affinity entry may name one); the
    // workers that take part in a batch are counted for MAX_NODES. Each
    // asynchronous batch has a job (type BATCH_JOB, uid = its bid, output
    // = its bid); the trigger keeps the job's status and owner with its
    // batch's in the same transaction, whichever statement moves it.
    "ALTER TABLE batches ADD COLUMN placement TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE nodes ADD COLUMN addrs TEXT NOT NULL DEFAULT '[]';  -- JSON array of IP addresses
    CREATE TABLE batch_workers (
        batch     TEXT NOT NULL,                 -- batches.bid
        worker    TEXT NOT NULL,                 -- nodes.worker_id
        joined_at TEXT NOT NULL,
        PRIMARY KEY (batch, worker)
    ) WITHOUT ROWID;
    CREATE TABLE jobs (
        job_no       INTEGER PRIMARY KEY AUTOINCREMENT,
        type         TEXT NOT NULL CHECK (type IN ('BATCH_JOB', 'STATEMENT', 'PROCESS')),
        name         TEXT NOT NULL,
        uid          TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('SCHEDULED', 'WAITING', 'IN_PROCESS',
                         'PROCESSED', 'STOPPING', 'TERMINATED', 'FAILED', 'RESTART')),
        affinity     TEXT,                       -- JOB_AFFINITY as given
        schedule     TEXT,
        statement    TEXT,                       -- the statement (or program) it runs
        args         TEXT,
        created_at   TEXT NOT NULL,
        start_time   TEXT,
        end_time     TEXT,
        next_run     TEXT,
        owner_worker TEXT,                       -- nodes.worker_id of its owner
        notes        TEXT,
        output       TEXT,                       -- BATCH_JOB: the bid
        archived     INTEGER NOT NULL DEFAULT 0,
        UNIQUE (type, name, uid)
    );
    CREATE INDEX jobs_by_uid ON jobs (uid);
    CREATE TRIGGER batch_job_follows_batch
    AFTER UPDATE OF status, owner_worker ON batches
    WHEN NEW.status IS NOT OLD.status OR NEW.owner_worker IS NOT OLD.owner_worker
    BEGIN
        UPDATE jobs SET
            status = CASE NEW.status
                WHEN 'WAITING_FOR_JOB' THEN 'WAITING'
                WHEN 'DONE' THEN 'PROCESSED'
                WHEN 'FAILED' THEN 'FAILED'
                WHEN 'CANCELLED' THEN 'TERMINATED'
                ELSE 'IN_PROCESS' END,
            owner_worker = CASE NEW.status WHEN 'WAITING_FOR_JOB' THEN NULL
                ELSE coalesce(NEW.owner_worker, owner_worker) END,
            start_time = CASE NEW.status WHEN 'WAITING_FOR_JOB' THEN start_time
                ELSE coalesce(start_time, NEW.start_time) END,
            end_time = NEW.end_time
        WHERE type = 'BATCH_JOB' AND uid = NEW.bid;
    END;",
    // 9: open batches (SPEC §4 OPEN, §6 BATCH_APPEND, BATCH_WAITOFF).
    // `open` is NULL for a batch created without OPEN=true, 1 while it
    // takes appends, 0 once BATCH_WAITOFF closed it. An appended id waits
    // in `batch_appends`, in the order of appending (`place`), until the
    // run that feeds the batch reads it through its duplicate check and
    // stores it as an entity: the batch's one writer numbers and counts
    // its entities, appended or not.
    "ALTER TABLE batches ADD COLUMN open INTEGER;
    CREATE TABLE batch_appends (
        place       INTEGER PRIMARY KEY,  -- order of appending, over all batches
        batch       INTEGER NOT NULL,     -- batches.batch_no
        entity_id   TEXT NOT NULL,
        appended_at TEXT NOT NULL,        -- RFC 3339 UTC
        node        TEXT NOT NULL         -- the node that appended it
    );
    CREATE INDEX batch_appends_by_batch ON batch_appends (batch, place);",
    // 10: the working directory of the process that created a batch (SPEC
    // §5): `exec`, `shell` and `pipe` run there, whoever runs the batch (a
    // retry from another folder, a worker, cron from `$HOME`). NULL for a
    // batch created before: its commands run where its process is.
    "ALTER TABLE batches ADD COLUMN workdir TEXT;",
    // 11: the ids of a FROM STDIN / FROM FILE batch (SPEC §4), stored with
    // the batch in the transaction that creates it: its lines, one id per
    // line, in parts of at most about a megabyte. A run reads them from
    // here as it would run a source query again (a retry, a takeover, a
    // worker), so they are read from stdin or the file only once.
    "CREATE TABLE batch_lines (
        bid   TEXT NOT NULL REFERENCES batches (bid) ON DELETE CASCADE,
        part  INTEGER NOT NULL,
        lines BLOB NOT NULL,
        PRIMARY KEY (bid, part)
    ) WITHOUT ROWID;",
    // 12: jobs that users start (SPEC §8): STATEMENT and PROCESS jobs,
    // fired when due by workers and `batchsh tick`. `last_due` is the due
    // time of a job's latest run: firing a run moves it on with a
    // compare-and-set, and a run's key is its job and due time (a UTC
    // instant), so that no job runs twice for one due time.
    "ALTER TABLE jobs ADD COLUMN last_due TEXT;
    ALTER TABLE jobs ADD COLUMN timeout_ms INTEGER;   -- PROCESS: TIMEOUT
    ALTER TABLE jobs ADD COLUMN workdir TEXT;         -- where it was created
    ALTER TABLE jobs ADD COLUMN short_form INTEGER NOT NULL DEFAULT 0;  -- made by SCHEDULE
    CREATE INDEX jobs_due ON jobs (next_run) WHERE type <> 'BATCH_JOB';
    CREATE TABLE job_runs (
        job_no     INTEGER NOT NULL REFERENCES jobs (job_no) ON DELETE CASCADE,
        due        TEXT NOT NULL,      -- RFC 3339 UTC, milliseconds
        node       TEXT NOT NULL,
        worker     TEXT NOT NULL,      -- nodes.worker_id that fired it
        start_time TEXT NOT NULL,
        end_time   TEXT,
        status     TEXT NOT NULL CHECK (status IN ('IN_PROCESS', 'PROCESSED', 'FAILED')),
        late_ms    INTEGER NOT NULL DEFAULT 0,
        skipped    INTEGER NOT NULL DEFAULT 0,
        output     TEXT,
        error      TEXT,
        exit_code  INTEGER,
        PRIMARY KEY (job_no, due)
    ) WITHOUT ROWID;",
    // 13: where a PROCESS run's program runs (its pid, which leads its
    // process group, and its host), so that the run of a process that died
    // is ended with its program: a program left running would overlap the
    // job's next run.
    "ALTER TABLE job_runs ADD COLUMN pid INTEGER;
    ALTER TABLE job_runs ADD COLUMN host TEXT;
    ALTER TABLE job_runs ADD COLUMN pid_start TEXT;  -- when that process started (a reused pid is not it)",
    // 14: named series and their runs (SPEC §9). A run is opened by
    // WINDOW_OPEN (and, later, by a BATCH WITH NAME=..., whose bid it then
    // holds); one run of a series is open at a time, which the partial
    // unique index makes sure of whatever process opens it.
    "CREATE TABLE series (
        name            TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
        reprocess_hours INTEGER NOT NULL DEFAULT 0 CHECK (reprocess_hours >= 0),
        trunc_start     INTEGER NOT NULL DEFAULT 0,
        from_date       TEXT,                    -- WINDOW_SET's, for the next run to open; local wall-clock text
        params          TEXT NOT NULL DEFAULT '{}', -- JSON object of the series' parameters
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
    );
    CREATE TABLE series_runs (
        series      TEXT NOT NULL COLLATE NOCASE REFERENCES series (name) ON DELETE CASCADE,
        run_no      INTEGER NOT NULL,
        batch_id    INTEGER NOT NULL,            -- the start as unix epoch seconds
        start_time  TEXT NOT NULL,               -- RFC 3339 UTC
        end_time    TEXT,
        status      TEXT NOT NULL CHECK (status IN ('OPEN', 'DONE', 'FAILED', 'CANCELLED')),
        failed      INTEGER NOT NULL DEFAULT 0,  -- failed entities of a run that is a batch
        from_date   TEXT NOT NULL,               -- the window it read from, local wall-clock text
        error       TEXT,
        bid         TEXT,                        -- the batch it is, if it is one
        PRIMARY KEY (series, run_no)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX series_runs_one_open ON series_runs (series) WHERE status = 'OPEN';",
    // 15: a run of a series that is a batch (BATCH ... WITH NAME=...)
    // follows its batch, whoever ends it (the run here, a worker, a
    // takeover, BATCH_CANCEL of an unowned batch): it ends as the batch
    // ends, DONE with the batch's failed entities, FAILED or CANCELLED; a
    // retry of the batch opens it again, when it is still its series'
    // latest run and no other run is open, so that the retry runs the
    // same window and its end is the run's.
    "CREATE TRIGGER series_run_ends_with_batch
    AFTER UPDATE OF status ON batches
    WHEN NEW.status IS NOT OLD.status AND NEW.status IN ('DONE', 'FAILED', 'CANCELLED')
    BEGIN
        UPDATE series_runs SET
            status = NEW.status,
            failed = NEW.failed,
            error = NEW.error,
            end_time = coalesce(NEW.end_time, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        WHERE bid = NEW.bid AND status = 'OPEN';
    END;
    CREATE TRIGGER series_run_reopens_with_batch
    AFTER UPDATE OF status ON batches
    WHEN OLD.status IN ('DONE', 'FAILED', 'CANCELLED')
        AND NEW.status NOT IN ('DONE', 'FAILED', 'CANCELLED')
    BEGIN
        UPDATE series_runs SET status = 'OPEN', failed = 0, error = NULL, end_time = NULL
        WHERE bid = NEW.bid
          AND run_no = (SELECT max(r.run_no) FROM series_runs r
                        WHERE r.series = series_runs.series)
          AND NOT EXISTS (SELECT 1 FROM series_runs o
                          WHERE o.series = series_runs.series AND o.status = 'OPEN');
    END;
    CREATE INDEX series_runs_by_bid ON series_runs (bid) WHERE bid IS NOT NULL;",
];

/// The newest schema version this binary knows.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the store to [`latest`]. The caller has checked it is not newer.
/// `upgrades` is told before a store holding data is upgraded.
pub fn apply(conn: &Connection, upgrades: Upgrades<'_>) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= latest() {
        return Ok(());
    }
    // IMMEDIATE: two processes opening a new store at once must not both
    // migrate; the second waits (busy timeout), then finds it done.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if let Upgrades::Told(tell) = upgrades
            && version >= 1
            && version < latest()
        {
            // Upgrading a store that holds data can take a while (every
            // entity row is rewritten by migration 3): the caller may say
            // why we wait.
            tell(Upgrade {
                from: version,
                to: latest(),
            });
        }
        for (n, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            conn.execute_batch(sql)?;
            conn.execute_batch(&format!("PRAGMA user_version = {}", n + 1))?;
        }
        conn.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}"))
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
