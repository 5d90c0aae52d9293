"""Every value of config.toml checked and typed, every problem kept with its place:
validation never stops at the first problem, so editors fix a file in one go."""

from __future__ import annotations

from typing import Any

from aggregator.config.keys import (
    AGGREGATOR_KEYS,
    FEED_KEYS,
    FEED_SIZE,
    INTERVAL,
    LANGUAGE,
    MAX_MENTIONS,
    NAME,
    NOTIFY_KEYS,
    RETENTION,
    SOURCE_KEYS,
    TAG_KEYS,
    TIMEOUT,
    WINDOW,
    closest,
    listen_problem,
)
from aggregator.config.place import Path_
from aggregator.config.reader import Reader
from aggregator.model import (
    USER_AGENT,
    Config,
    CuratedFeed,
    Dedupe,
    Notify,
    Settings,
    Source,
    TagRule,
    database_at,
)


class _Validator(Reader):
    """The sections of config.toml, each read into its frozen value (model/config.py)."""

    def config(self, data: dict[str, Any]) -> Config | None:
        self.unknown(
            data, {"aggregator", "disclaimer", "dedupe", "notify", "sources", "tags", "feeds"}, ()
        )
        settings = self.settings(self.table(data, "aggregator"))
        disclaimers, default_language = self.disclaimer(self.table(data, "disclaimer"))
        dedupe = self.dedupe(self.table(data, "dedupe"))
        notify = self.notify(self.table(data, "notify"))
        raw_sources = self.get(data, "sources", list, (), [])
        sources = tuple(
            s
            for i, raw in enumerate(raw_sources)
            if (s := self.source(raw, ("sources", i), i, settings)) is not None
        )
        tags = self.tags(self.table(data, "tags"))
        raw_feeds = self.get(data, "feeds", list, (), [])
        feeds = tuple(
            f for i, raw in enumerate(raw_feeds) if (f := self.feed(raw, ("feeds", i))) is not None
        )
        self.unique(raw_sources, "sources")
        self.unique(raw_feeds, "feeds")
        self.references(sources, tags, feeds)
        return Config(
            path=self.path,
            settings=settings,
            disclaimers=disclaimers,
            default_language=default_language,
            dedupe=dedupe,
            sources=sources,
            tags=tags,
            feeds=feeds,
            notify=notify,
        )

    def settings(self, data: dict[str, Any]) -> Settings:
        w: Path_ = ("aggregator",)
        self.unknown(data, AGGREGATOR_KEYS, w)
        base = self.path.parent
        concurrency = self.get(data, "concurrency", int, w, 16)
        if concurrency < 1:
            self.err((*w, "concurrency"), "must be at least 1")
            concurrency = 16
        per_host = self.get(data, "per_host", int, w, 2)
        if per_host < 1:
            self.err((*w, "per_host"), "must be at least 1")
            per_host = 2
        base_url = self.url(data, "base_url", w, "http://localhost:8080/")
        if not base_url.endswith("/"):
            base_url += "/"
        listen = self.get(data, "listen", str, w, "127.0.0.1:8080")
        if listen and (problem := listen_problem(listen)):
            self.err((*w, "listen"), f'{problem} or "" to turn the server off')
            listen = "127.0.0.1:8080"
        hub = self.url(data, "hub", w, "") if data.get("hub") else ""
        return Settings(
            database=database_at(base, self.get(data, "database", str, w, "aggregator.db")),
            output_dir=base / self.get(data, "output_dir", str, w, "feeds"),
            base_url=base_url,
            interval=self.converted(data, "interval", w, 900.0, INTERVAL),
            retention=self.converted(data, "retention", w, 30 * 86400.0, RETENTION),
            user_agent=self.get(data, "user_agent", str, w, USER_AGENT) or USER_AGENT,
            timeout=self.converted(data, "timeout", w, 20.0, TIMEOUT),
            max_feed_size=self.converted(data, "max_feed_size", w, 10_000_000, FEED_SIZE),
            concurrency=concurrency,
            per_host=per_host,
            listen=listen,
            hub=hub,
            allow_private_networks=self.get(data, "allow_private_networks", bool, w, False),
            parse_timeout=self.converted(data, "parse_timeout", w, 15.0, TIMEOUT),
            topic_model=self.get(data, "topic_model", bool, w, True),
            site_title=self.get(data, "site_title", str, w, "Curated news feeds").strip()
            or "Curated news feeds",
            public_source_health=self.get(data, "public_source_health", bool, w, False),
            max_document_items=self.document_items(data, w),
        )

    def document_items(self, data: dict[str, Any], w: Path_) -> int:
        value = self.get(data, "max_document_items", int, w, 1000)
        if not 10 <= value <= 100_000:
            self.err((*w, "max_document_items"), f"must be between 10 and 100000, got {value}")
            return 1000
        return int(value)

    def disclaimer(self, data: dict[str, Any]) -> tuple[dict[str, str], str]:
        w: Path_ = ("disclaimer",)
        default = self.get(data, "default", str, w, "en")
        texts: dict[str, str] = {}
        for key, value in data.items():
            if key == "default":
                continue
            if not LANGUAGE.match(key):
                self.err((*w, key), "unknown key (expected `default` or a language code like `en`)")
            elif not isinstance(value, str) or not value.strip():
                self.err((*w, key), "must be a non-empty string")
            else:
                texts[key] = " ".join(value.split())
        if not texts:
            self.err(w, 'needs at least one disclaimer text, e.g. en = "..."')
        elif default not in texts:
            self.err((*w, "default"), f"names {default!r}, which has no text here")
        return texts, default

    def dedupe(self, data: dict[str, Any]) -> Dedupe:
        w: Path_ = ("dedupe",)
        self.unknown(data, {"window", "similarity"}, w)
        similarity = self.get(data, "similarity", (float, int), w, 0.8)
        if not 0 <= similarity <= 1:
            self.err((*w, "similarity"), f"must be between 0 and 1, got {similarity}")
            similarity = 0.8
        return Dedupe(
            window=self.converted(data, "window", w, 72 * 3600.0, WINDOW),
            similarity=float(similarity),
        )

    def notify(self, data: dict[str, Any]) -> Notify:
        w: Path_ = ("notify",)
        self.unknown(data, NOTIFY_KEYS, w)
        failures = self.get(data, "failures", int, w, 3)
        if failures < 1:
            self.err((*w, "failures"), "must be at least 1")
            failures = 3
        webhook = self.url(data, "webhook", w, "") if data.get("webhook") else ""
        return Notify(webhook=webhook, failures=failures)

    def source(self, raw: Any, w: Path_, order: int, settings: Settings) -> Source | None:
        if not isinstance(raw, dict):
            self.err(w, "must be a table ([[sources]])")
            return None
        self.unknown(raw, SOURCE_KEYS, w)
        name = self.name(raw, w)
        url = self.url(raw, "url", w, "", required=True)
        cron = self.get(raw, "cron", str, w, "")
        if cron:
            cron = self.converted(raw, "cron", w, "", _check_cron)
        if cron and "interval" in raw:
            self.err((*w, "cron"), "give either interval or cron, not both")
        language = self.get(raw, "language", str, w, "").lower()
        if language and not LANGUAGE.match(language):
            self.err((*w, "language"), f"not a language code: {language!r}")
        tags = self.strings(raw, "tags", w)
        leans = self.strings(raw, "leans", w)
        for key, names in (("tags", tags), ("leans", leans)):
            for i, tag in enumerate(names):
                if not NAME.match(tag):
                    self.err((*w, key, i), f"not a tag name ([a-z0-9-]): {tag!r}")
        return Source(
            name=name,
            url=url,
            title=self.get(raw, "title", str, w, "").strip(),
            tags=tags,
            leans=leans,
            language=language.split("-")[0],
            interval=self.converted(raw, "interval", w, None, INTERVAL),
            cron=cron,
            priority=self.get(raw, "priority", int, w, 0),
            enabled=self.get(raw, "enabled", bool, w, True),
            order=order,
            retention=self.converted(raw, "retention", w, None, RETENTION),
            keep_min_items=self.keep_min_items(raw, w),
        )

    def keep_min_items(self, raw: dict[str, Any], w: Path_) -> int:
        keep = self.get(raw, "keep_min_items", int, w, 0)
        if not 0 <= keep <= 10_000:
            self.err((*w, "keep_min_items"), f"must be between 0 and 10000, got {keep}")
            return 0
        return int(keep)

    def name(self, raw: dict[str, Any], w: Path_) -> str:
        if "name" not in raw:
            self.err((*w, "name"), "missing (a unique name of [a-z0-9-] is required)")
            return ""
        name = raw["name"]
        if not isinstance(name, str) or not NAME.match(name):
            self.err((*w, "name"), f"must be lower-case letters, digits and '-', got {name!r}")
            return ""
        return name

    def tags(self, data: dict[str, Any]) -> tuple[TagRule, ...]:
        rules = []
        for name, raw in data.items():
            w: Path_ = ("tags", name)
            if not NAME.match(name):
                self.err(w, f"not a tag name ([a-z0-9-]): {name!r}")
            if not isinstance(raw, dict):
                self.err(w, "must be a table ([tags.NAME])")
                continue
            self.unknown(raw, TAG_KEYS, w)
            patterns = self.strings(raw, "patterns", w)
            for i, pattern in enumerate(patterns):
                try:
                    import regex  # the engine tagging runs patterns on: checked by it

                    regex.compile(pattern, regex.IGNORECASE | regex.V0)
                except regex.error as exc:
                    self.err((*w, "patterns", i), f"regular expression does not compile: {exc}")
            mentions = self.get(raw, "mentions", int, w, 1)
            if not 1 <= mentions <= MAX_MENTIONS:
                self.err((*w, "mentions"), f"must be between 1 and {MAX_MENTIONS}, got {mentions}")
                mentions = 1
            rule = TagRule(
                name=name,
                keywords=self.strings(raw, "keywords", w),
                patterns=patterns,
                exclude=self.strings(raw, "exclude", w),
                exclude_in_title=self.strings(raw, "exclude_in_title", w),
                categories=self.strings(raw, "categories", w),
                implies=self.strings(raw, "implies", w),
                needs_context=self.strings(raw, "needs_context", w),
                context=self.strings(raw, "context", w),
                mentions=mentions,
                requires=self.strings(raw, "requires", w),
                passing=self.strings(raw, "passing", w),
                rivals=self.strings(raw, "rivals", w),
            )
            for i, template in enumerate(rule.passing):
                star = template.strip()
                if star.count("*") != 1 or not (star.startswith("*") or star.endswith("*")):
                    self.err(
                        (*w, "passing", i),
                        f'needs one * for the name, first or last ("former *", "* models"), '
                        f"got {template!r}",
                    )
                elif not star.strip("* "):
                    self.err((*w, "passing", i), f"needs words beside the *, got {template!r}")
            if rule.needs_context and not rule.context:
                self.err(
                    (*w, "needs_context"),
                    "needs a `context` list: the words that must appear for these names to count",
                )
            rules.append(rule)
        return tuple(rules)

    def feed(self, raw: Any, w: Path_) -> CuratedFeed | None:
        if not isinstance(raw, dict):
            self.err(w, "must be a table ([[feeds]])")
            return None
        self.unknown(raw, FEED_KEYS, w)
        name = self.name(raw, w)
        title = self.get(raw, "title", str, w, "").strip()
        if not title:
            self.err((*w, "title"), "missing (readers show it as the feed's name)")
        max_items = self.get(raw, "max_items", int, w, 50)
        if max_items < 1:
            self.err((*w, "max_items"), "must be at least 1")
            max_items = 50
        content = self.get(raw, "content", str, w, "summary")
        if content not in ("summary", "full"):
            self.err((*w, "content"), f'must be "summary" or "full", got {content!r}')
            content = "summary"
        languages = tuple(lang.lower() for lang in self.strings(raw, "languages", w))
        for i, lang in enumerate(languages):
            if not LANGUAGE.match(lang):
                self.err((*w, "languages", i), f"not a language code: {lang!r}")
        return CuratedFeed(
            name=name,
            title=title or name,
            description=self.get(raw, "description", str, w, "").strip(),
            any_tags=self.strings(raw, "any_tags", w),
            all_tags=self.strings(raw, "all_tags", w),
            none_tags=self.strings(raw, "none_tags", w),
            languages=tuple(lang.split("-")[0] for lang in languages),
            sources=self.strings(raw, "sources", w),
            max_items=max_items,
            content=content,
        )

    def unique(self, raws: list[Any], section: str) -> None:
        seen: dict[str, int] = {}
        for i, raw in enumerate(raws):
            name = raw.get("name") if isinstance(raw, dict) else None
            if not isinstance(name, str):
                continue
            if name in seen:
                self.err(
                    (section, i, "name"), f"duplicate name {name!r} (also {section}[{seen[name]}])"
                )
            else:
                seen[name] = i

    def references(
        self, sources: tuple[Source, ...], tags: tuple[TagRule, ...], feeds: tuple[CuratedFeed, ...]
    ) -> None:
        rules = {t.name for t in tags}
        known = rules | {tag for s in sources for tag in s.tags}
        for t in tags:
            for key in ("implies", "requires", "rivals"):
                for i, other in enumerate(getattr(t, key)):
                    if other not in known:
                        self.err(("tags", t.name, key, i), f"unknown tag {other!r}")
        for n, s in enumerate(sources):
            for i, lean in enumerate(s.leans):
                if lean not in rules:
                    hint = closest(lean, rules)
                    extra = f" (did you mean {hint!r}?)" if hint else ""
                    self.err(
                        ("sources", n, "leans", i),
                        f"no rule [tags.{lean}] to find evidence of it{extra}",
                    )
        names = {s.name for s in sources}
        for n, f in enumerate(feeds):
            for key in ("any_tags", "all_tags", "none_tags"):
                for i, tag in enumerate(getattr(f, key)):
                    if tag not in known:
                        hint = closest(tag, known)
                        extra = f" (did you mean {hint!r}?)" if hint else ""
                        self.err(("feeds", n, key, i), f"unknown tag {tag!r}{extra}")
            for i, source in enumerate(f.sources):
                if source not in names:
                    self.err(("feeds", n, "sources", i), f"unknown source {source!r}")


def _check_cron(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a cron expression string, got {value!r}")
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(value, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"not a cron expression ({exc}): {value!r}") from None
    return value
