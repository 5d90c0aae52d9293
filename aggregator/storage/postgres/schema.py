"""The PostgreSQL schema as migrations: `MIGRATIONS[n]` takes a database from version n to
n+1 (kept in `meta` under `schema`), in one transaction taken under an advisory lock, so
that nodes starting together migrate once.

Its tables and columns are SQLite's (storage/sqlite/schema.py, as of its migration 9), so
that one set of queries serves both and `aggregator db copy` moves rows as they are; the
differences are PostgreSQL's: `rowid` is a column of its own, texts compare byte by byte
(COLLATE "C", as SQLite's do), times are double precision epoch seconds. Only
PostgreSQL has `leases` (several nodes pulling; `aggregator db copy` leaves them).
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: SQLite's schema 9
    """
    CREATE TABLE IF NOT EXISTS meta(key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE sources(
        name TEXT COLLATE "C" PRIMARY KEY,
        url TEXT NOT NULL DEFAULT '',
        etag TEXT NOT NULL DEFAULT '',
        last_modified TEXT NOT NULL DEFAULT '',
        feed_title TEXT NOT NULL DEFAULT '',
        feed_link TEXT NOT NULL DEFAULT '',
        body_hash TEXT NOT NULL DEFAULT '',
        last_pull DOUBLE PRECISION,
        last_ok DOUBLE PRECISION,
        last_status INTEGER,
        last_error_kind TEXT NOT NULL DEFAULT '',
        last_error TEXT NOT NULL DEFAULT '',
        last_new INTEGER NOT NULL DEFAULT 0,
        last_items INTEGER NOT NULL DEFAULT 0,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        next_pull DOUBLE PRECISION,
        next_reason TEXT NOT NULL DEFAULT '',
        gone_print TEXT NOT NULL DEFAULT '',
        redirect_url TEXT NOT NULL DEFAULT '',
        redirect_count INTEGER NOT NULL DEFAULT 0,
        redirect_print TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE items(
        rowid BIGSERIAL UNIQUE,
        uid TEXT COLLATE "C" PRIMARY KEY,
        source TEXT COLLATE "C" NOT NULL,
        key TEXT COLLATE "C" NOT NULL,
        story TEXT COLLATE "C" NOT NULL,
        link TEXT COLLATE "C" NOT NULL,
        canonical TEXT COLLATE "C" NOT NULL,
        title TEXT NOT NULL,
        authors TEXT NOT NULL,
        categories TEXT NOT NULL,
        language TEXT NOT NULL,
        published DOUBLE PRECISION NOT NULL,
        updated DOUBLE PRECISION NOT NULL,
        first_seen DOUBLE PRECISION NOT NULL,
        content_hash TEXT NOT NULL,
        tags TEXT NOT NULL,
        similarity DOUBLE PRECISION,
        matched TEXT NOT NULL DEFAULT '',
        match_reason TEXT NOT NULL DEFAULT '',
        near_print TEXT NOT NULL DEFAULT '',
        summary_html TEXT NOT NULL,
        summary_text TEXT NOT NULL,
        content_html TEXT NOT NULL,
        content_text TEXT NOT NULL,
        tag_names TEXT NOT NULL DEFAULT '',
        UNIQUE(source, key)
    );
    CREATE INDEX items_canonical ON items(canonical) WHERE canonical != '';
    CREATE INDEX items_story ON items(story);
    CREATE INDEX items_published ON items(published);
    CREATE INDEX items_first_seen ON items(first_seen);
    CREATE TABLE tombstones(key TEXT COLLATE "C" PRIMARY KEY, pruned DOUBLE PRECISION NOT NULL);
    CREATE TABLE near_keys(item BIGINT PRIMARY KEY, keys TEXT NOT NULL);
    CREATE TABLE requests(
        id BIGSERIAL PRIMARY KEY,
        action TEXT NOT NULL,
        source TEXT NOT NULL,
        asked DOUBLE PRECISION NOT NULL
    );
    """,
    # 2: leases, a row while a node pulls a source (issue #18; SQLite has one writer)
    """
    CREATE TABLE leases(
        source TEXT COLLATE "C" PRIMARY KEY,
        node TEXT NOT NULL,
        token TEXT NOT NULL,
        since DOUBLE PRECISION NOT NULL,
        until DOUBLE PRECISION NOT NULL,
        host TEXT NOT NULL DEFAULT '',
        fetching INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX leases_host ON leases(host) WHERE fetching = 1;
    """,
    # 3: SQLite's 10, what choosing a feed's stories reads in one index (index-only scans)
    """
    CREATE INDEX items_copies ON items(published, uid)
        INCLUDE (story, source, language, tag_names);
    DROP INDEX items_published;
    """,
    # 4: SQLite's 11, the print of the feed entry each copy was made from
    """
    ALTER TABLE items ADD COLUMN entry_print BIGINT NOT NULL DEFAULT 0;
    """,
]
