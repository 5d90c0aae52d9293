"""The schema as migrations: `MIGRATIONS[n]` takes a database from user_version n to n+1,
in one transaction (see `Store._migrate`)."""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: first release
    """
    CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE sources(
        name TEXT PRIMARY KEY,
        url TEXT NOT NULL DEFAULT '',
        etag TEXT NOT NULL DEFAULT '',
        last_modified TEXT NOT NULL DEFAULT '',
        feed_title TEXT NOT NULL DEFAULT '',
        feed_link TEXT NOT NULL DEFAULT '',
        body_hash TEXT NOT NULL DEFAULT '',
        last_pull REAL,
        last_ok REAL,
        last_status INTEGER,
        last_error_kind TEXT NOT NULL DEFAULT '',
        last_error TEXT NOT NULL DEFAULT '',
        last_new INTEGER NOT NULL DEFAULT 0,
        last_items INTEGER NOT NULL DEFAULT 0,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        next_pull REAL
    );
    CREATE TABLE items(
        uid TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        key TEXT NOT NULL,
        story TEXT NOT NULL,
        link TEXT NOT NULL,
        canonical TEXT NOT NULL,
        title TEXT NOT NULL,
        summary_html TEXT NOT NULL,
        summary_text TEXT NOT NULL,
        content_html TEXT NOT NULL,
        content_text TEXT NOT NULL,
        authors TEXT NOT NULL,
        categories TEXT NOT NULL,
        language TEXT NOT NULL,
        published REAL NOT NULL,
        updated REAL NOT NULL,
        first_seen REAL NOT NULL,
        content_hash TEXT NOT NULL,
        tags TEXT NOT NULL,
        UNIQUE(source, key)
    );
    CREATE INDEX items_canonical ON items(canonical) WHERE canonical != '';
    CREATE INDEX items_story ON items(story);
    CREATE INDEX items_published ON items(published);
    CREATE TABLE tombstones(key TEXT PRIMARY KEY, pruned REAL NOT NULL);
    """,
    # 2: the daemon's failure policy (why the next pull is when it is; gone; moved)
    """
    ALTER TABLE sources ADD COLUMN next_reason TEXT NOT NULL DEFAULT '';
    ALTER TABLE sources ADD COLUMN gone_print TEXT NOT NULL DEFAULT '';
    ALTER TABLE sources ADD COLUMN redirect_url TEXT NOT NULL DEFAULT '';
    ALTER TABLE sources ADD COLUMN redirect_count INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sources ADD COLUMN redirect_print TEXT NOT NULL DEFAULT '';
    """,
    # 3: story clusters: near-duplicate index keys, and why a copy joined its story
    """
    ALTER TABLE items ADD COLUMN similarity REAL;
    ALTER TABLE items ADD COLUMN matched TEXT NOT NULL DEFAULT '';
    ALTER TABLE items ADD COLUMN match_reason TEXT NOT NULL DEFAULT '';
    CREATE TABLE near_keys(key INTEGER NOT NULL, item INTEGER NOT NULL, seen REAL NOT NULL);
    CREATE INDEX near_keys_key ON near_keys(key);
    """,
    # 4: the key index covers the lookup (the window is checked on the items found)
    """
    DROP INDEX near_keys_key;
    CREATE INDEX near_keys_key ON near_keys(key, item);
    """,
    # 5: each copy's similarity fingerprint, serialized (compared without its text); the
    # texts last, so that reading the other columns never walks a row's overflow pages
    """
    CREATE TABLE items_new(
        uid TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        key TEXT NOT NULL,
        story TEXT NOT NULL,
        link TEXT NOT NULL,
        canonical TEXT NOT NULL,
        title TEXT NOT NULL,
        authors TEXT NOT NULL,
        categories TEXT NOT NULL,
        language TEXT NOT NULL,
        published REAL NOT NULL,
        updated REAL NOT NULL,
        first_seen REAL NOT NULL,
        content_hash TEXT NOT NULL,
        tags TEXT NOT NULL,
        similarity REAL,
        matched TEXT NOT NULL DEFAULT '',
        match_reason TEXT NOT NULL DEFAULT '',
        near_print TEXT NOT NULL DEFAULT '',
        summary_html TEXT NOT NULL,
        summary_text TEXT NOT NULL,
        content_html TEXT NOT NULL,
        content_text TEXT NOT NULL,
        UNIQUE(source, key)
    );
    INSERT INTO items_new(rowid, uid, source, key, story, link, canonical, title, authors,
        categories, language, published, updated, first_seen, content_hash, tags, similarity,
        matched, match_reason, summary_html, summary_text, content_html, content_text)
      SELECT rowid, uid, source, key, story, link, canonical, title, authors, categories,
        language, published, updated, first_seen, content_hash, tags, similarity, matched,
        match_reason, summary_html, summary_text, content_html, content_text FROM items;
    DROP TABLE items;
    ALTER TABLE items_new RENAME TO items;
    CREATE INDEX items_canonical ON items(canonical) WHERE canonical != '';
    CREATE INDEX items_story ON items(story);
    CREATE INDEX items_published ON items(published);
    """,
    # 6: the near-duplicate keys as one B-tree (key, item): no table beside the index
    """
    CREATE TABLE near_keys_new(
        key INTEGER NOT NULL, item INTEGER NOT NULL, PRIMARY KEY(key, item)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO near_keys_new(key, item) SELECT key, item FROM near_keys;
    DROP TABLE near_keys;
    ALTER TABLE near_keys_new RENAME TO near_keys;
    """,
    # 7: each copy's tag names as words: choosing what to publish reads no JSON
    """
    ALTER TABLE items ADD COLUMN tag_names TEXT NOT NULL DEFAULT '';
    UPDATE items SET tag_names = coalesce((
        SELECT group_concat(name, ' ') FROM (
            SELECT DISTINCT json_extract(value, '$[0]') AS name FROM json_each(items.tags)
        )), '');
    """,
    # 8: an item's near-duplicate keys as one row (8 hex digits a key), looked up in memory
    # (storage/keyindex.py): a B-tree of (key, item) took 23 random inserts an item
    """
    CREATE TABLE near_keys_new(item INTEGER PRIMARY KEY, keys TEXT NOT NULL);
    INSERT INTO near_keys_new(item, keys)
        SELECT item, group_concat(printf('%08x', key), '') FROM near_keys GROUP BY item;
    DROP TABLE near_keys;
    ALTER TABLE near_keys_new RENAME TO near_keys;
    """,
    # 9: operators' requests to a running daemon (`aggregator refresh`, `reset`)
    """
    CREATE TABLE requests(
        id INTEGER PRIMARY KEY,
        action TEXT NOT NULL,
        source TEXT NOT NULL,
        asked REAL NOT NULL
    );
    """,
    # 10: what choosing a feed's stories reads (`copies()`: each publish, and `check`), in
    # one index read alone: the rows carry their texts in overflow pages that reading
    # tag_names (their last column) walked; 10,000 copies took 78 ms, now 24 ms. It
    # starts with `published`, so it stands in for items_published (no more writes).
    """
    CREATE INDEX items_copies ON items(published, uid, story, source, language, tag_names);
    DROP INDEX items_published;
    """,
    # 11: the print of the feed entry each copy was made from (normalize.entry_print): an
    # entry seen again is known unchanged without normalizing it (0: no print yet)
    """
    ALTER TABLE items ADD COLUMN entry_print INTEGER NOT NULL DEFAULT 0;
    """,
]
