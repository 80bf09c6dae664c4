"""``jiaoying spotcheck``: 六问 spot-checks (抽查) from the terminal — start one (the seed printed, so
the draw can be audited), list the latest, show one's answers and follow-up list, preview whom a
seed would draw (nothing written), and audit a spot-check's draw against its seed. The board's
六问抽查 page shows the same."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .cli_db import transaction
from .cli_lang import LangOption, checked_lang, word

spotcheck_app = typer.Typer(help="六问 spot-checks (抽查): start one, list them, show the answers, preview or "
                                 "audit a draw.", no_args_is_help=True)

_WORDS = {
    "started": ("已发起 {headline}：{id}（引擎随即逐一电话、短信提问）",
                "Started {headline}: {id} (the engine calls and texts the people drawn now)"),
    "seed": ("随机种子 {seed}（凭此可复核抽样：jiaoying spotcheck audit {id}）",
             "Seed {seed} (to audit the draw: jiaoying spotcheck audit {id})"),
    "drawn": ("抽取 {drawn} 人（要求 {size} 人，可抽 {available} 人，近{days}天已抽查未再抽取 {skipped} 人）",
              "Drew {drawn} (asked {size}, {available} available, {skipped} left out as checked in the last {days} "
              "days)"),
    "short": ("可抽取人数不足：只有 {available} 人可抽（要求抽取 {size} 人）",
              "not enough people to draw: only {available} available ({size} asked)"),
    "during": ("关联预警 {id}", "During warning {id}"),
    "preview": ("预览（未发起、未写入）：{name}，随机种子 {seed}",
                "Preview (nothing started or written): {name}, seed {seed}"),
    "none": ("还没有六问抽查", "no spot-checks yet"),
    "calling": ("引擎正在发起呼叫", "the engine is calling"), "id": ("编号", "Id"), "when": ("时间", "At"),
    "what": ("抽查", "Spot-check"), "seed_h": ("种子", "Seed"), "drawn_h": ("抽取", "Drawn"),
    "ok": ("全部为是", "all yes"), "no": ("有“否”", "said no"), "missing": ("未答全", "not all answered"),
    "open": ("作答中", "answering"), "name": ("姓名", "Name"), "town": ("乡镇", "Town"), "post": ("岗位", "Role"),
    "q": ("第{n}问", "Q{n}"), "question": ("问题", "Question"), "yes_h": ("是", "Yes"), "no_h": ("否", "No"),
    "none_h": ("未答", "No answer"), "result": ("结果", "Result"), "follow": ("需跟进（{n} 人）", "Follow up ({n})"),
    "nobody_follow": ("暂无需跟进人员", "nobody to follow up"), "again": ("回复未能识别，已再次询问", "asked again"),
    "audit_ok": ("复核一致：按随机种子 {seed} 重新抽取，抽到的正是记录中的 {n} 人（顺序相同）。",
                 "Audit passed: drawing again with seed {seed} gives the {n} people on the record, in the same "
                 "order."),
    "audit_bad": ("复核不一致：按随机种子 {seed} 重新抽取的结果与记录不同（名册自抽查以来可能已变动）。",
                  "Audit failed: drawing again with seed {seed} does not give the people on the record (the roster "
                  "may have changed since)."),
    "recorded": ("记录", "Recorded"), "redrawn": ("重新抽取", "Drawn again"),
}
_MARK = {"yes": ("是", "yes"), "no": ("否", "no"), None: ("—", "-")}


def _w(key: str, lang: str) -> str:
    return word(_WORDS, key, lang)


CheckOption = Annotated[str | None, typer.Option("--check", help="the spot-check's id in checks.yaml (default: the "
                                                                 "first)")]
SizeOption = Annotated[int | None, typer.Option("--size", help="how many people to draw (default: checks.yaml's)")]
SeedOption = Annotated[int | None, typer.Option("--seed", help="the draw's seed, a whole number (default: random; "
                                                               "printed either way)")]


def _problem(exc: Exception, lang: str, **given: Any) -> str:
    """An error of the spot-check services as one line in ``lang``."""
    from .domain.spotcheck import MAX_SIZE
    from .services import spotchecks
    from .services.errors import NotReady

    if lang == "en" or not isinstance(exc, spotchecks.UnknownSpotCheck | spotchecks.NobodyToDraw | ValueError
                                      | NotReady):
        return str(exc)
    if isinstance(exc, NotReady):
        return f"尚未加载站点文件，请先运行 jiaoying load（{exc}）"
    if isinstance(exc, spotchecks.UnknownSpotCheck):
        if given.get("warning") and "warning" in str(exc):
            return f"没有预警 {given['warning']}（{exc}）"
        if given.get("check"):
            return f"没有这个抽查：{given['check']}（{exc}）"
        return f"本县尚未配置六问抽查（{exc}）"
    if isinstance(exc, spotchecks.NobodyToDraw):
        return f"无人可抽（{exc}）"
    if "size" in str(exc):
        return f"抽取人数须为 1 至 {MAX_SIZE} 的整数，而不是 {given.get('size')}"
    return f"随机种子须为不小于 0 的整数，而不是 {given.get('seed')}"


@spotcheck_app.command("start")
def start(check: CheckOption = None, size: SizeOption = None, seed: SeedOption = None,
          warning: Annotated[str | None, typer.Option("--warning", help="the warning it checks about (its id)")]
          = None,
          lang: LangOption = "zh") -> None:
    """Draw the sample and start a spot-check now (the engine calls and texts the people drawn)."""
    from .cli import database_url, fail, now
    from .services import spotchecks
    from .services.errors import NotReady
    from .services.warnings import possible_id

    lang = checked_lang(lang)
    url = database_url()
    if warning is not None and not possible_id(warning):
        raise fail(escape(f"no warning {warning[:40]!r}" if lang == "en" else f"没有预警 {warning[:40]}"))
    try:
        with transaction(url) as session:
            started = spotchecks.start(session, check, now(), "cli", size=size, seed=seed, during=warning)
            headline = spotchecks.result(session, started.id).headline
    except (spotchecks.UnknownSpotCheck, spotchecks.NobodyToDraw, ValueError, NotReady) as exc:
        raise fail(escape(_problem(exc, lang, check=check, size=size, seed=seed, warning=warning))) from None
    out = Console(highlight=False, soft_wrap=True)
    out.print(_w("started", lang).format(headline=headline, id=started.id), markup=False)
    _draw_lines(out, lang, started.id, started.seed, started.sample, started.spotcheck.skip_days)
    if warning:
        out.print(_w("during", lang).format(id=warning), markup=False)


def _draw_lines(out: Console, lang: str, record_id: str | None, seed: int, sample: Any, days: int) -> None:
    if record_id:
        out.print(_w("seed", lang).format(seed=seed, id=record_id), markup=False)
    out.print(_w("drawn", lang).format(drawn=len(sample.drawn), size=sample.size, available=sample.available,
                                       skipped=len(sample.skipped), days=days), markup=False)
    if sample.short:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            "[bold yellow]warning:[/] " + escape(_w("short", lang).format(available=sample.available,
                                                                         size=sample.size)))


@spotcheck_app.command("preview")
def preview(check: CheckOption = None, size: SizeOption = None, seed: SeedOption = None,
            as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
            lang: LangOption = "zh") -> None:
    """Whom a spot-check would draw now with this seed (nothing is started or written)."""
    from .cli import database_url, fail, now
    from .services import spotchecks
    from .services.errors import NotReady
    from .services.site import current_site

    lang = checked_lang(lang)
    try:
        with transaction(database_url(), write=False) as session:
            spotcheck, sample, seed = spotchecks.preview(session, check, now(), size, seed)
            site = current_site(session)
            people = [_who(site, spotcheck, p) for p in sample.drawn]
    except (spotchecks.UnknownSpotCheck, ValueError, NotReady) as exc:
        raise fail(escape(_problem(exc, lang, check=check, size=size, seed=seed))) from None
    if as_json:
        sys.stdout.write(json.dumps({"spotcheck": spotcheck.id, "seed": seed, "size": sample.size,
                                     "available": sample.available, "skipped": list(sample.skipped),
                                     "short": sample.short, "drawn": people}, ensure_ascii=False, indent=2) + "\n")
        return
    out = Console(highlight=False, soft_wrap=True)
    out.print(_w("preview", lang).format(name=spotcheck.name, seed=seed), markup=False)
    _draw_lines(out, lang, None, seed, sample, spotcheck.skip_days)
    _people_table(out, lang, people)


def _who(site: Any, spotcheck: Any, person_id: str) -> dict[str, str]:
    from .domain.spotcheck import reason, town_of

    person = site.people[person_id]
    return {"id": person_id, "name": person.name, "town": site.areas.name(town_of(person.area)),
            "reason": reason(site, spotcheck, person_id)}


def _people_table(out: Console, lang: str, people: list[dict[str, str]]) -> None:
    table = Table("#", _w("name", lang), _w("town", lang), _w("post", lang))
    for i, p in enumerate(people, 1):
        table.add_row(str(i), escape(p["name"]), escape(p["town"]), escape(p["reason"]))
    out.print(table)


@spotcheck_app.command("list")
def list_spotchecks(
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    lang: LangOption = "zh",
) -> None:
    """The latest spot-checks: seed, drawn, and how many answered all 是, said 否, left some unanswered."""
    from .cli import database_url
    from .services import spotchecks
    from .services.site import current_site

    lang = checked_lang(lang)
    with transaction(database_url(), write=False) as session:
        results = spotchecks.history(session, max(1, min(limit, 500)))
        tz = current_site(session).tz if results else None
    if as_json:
        sys.stdout.write(json.dumps([_summary(r) for r in results], ensure_ascii=False, indent=2) + "\n")
        return
    out = Console(highlight=False)
    if not results:
        out.print(_w("none", lang), markup=False)
        return
    table = Table(_w("id", lang), _w("when", lang), _w("seed_h", lang), _w("drawn_h", lang), _w("result", lang))
    for column in table.columns[:4]:
        column.no_wrap = True
    for r in results:
        drawn = f"{len(r.frozen.drawn)}/{r.frozen.size}"
        counts = " · ".join(f"{_w(v, lang)} {r.count(v)}" for v in ("ok", "no", "missing", "open") if r.count(v))
        table.add_row(r.id, f"{r.at.astimezone(tz):%m-%d %H:%M}", str(r.frozen.seed),
                      f"[bold yellow]{drawn}[/]" if len(r.frozen.drawn) < r.frozen.size else drawn,
                      escape(counts or _w("calling", lang)))
    out.print(table)


def _summary(r: Any) -> dict[str, Any]:
    kept = r.frozen
    return {"id": r.id, "headline": r.headline, "at": r.at.isoformat(), "spotcheck": kept.spotcheck.id,
            "seed": kept.seed, "size": kept.size, "drawn": len(kept.drawn), "available": kept.available,
            "skipped": len(kept.skipped), "short": len(kept.drawn) < kept.size, "during": kept.during,
            "started": r.started, "counts": {v: r.count(v) for v in ("ok", "no", "missing", "open")},
            "follow_up": len(r.follow_up)}


@spotcheck_app.command("show")
def show(
    spotcheck_id: Annotated[str, typer.Argument(help="the spot-check's id (from `jiaoying spotcheck list`)")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    lang: LangOption = "zh",
) -> None:
    """A spot-check: its seed and draw, each question's tally, each person's answers, the follow-up list."""
    from .cli import database_url
    from .services.site import current_site

    lang = checked_lang(lang)
    with transaction(database_url(), write=False) as session:
        r = _result(session, spotcheck_id, lang)
        tz = current_site(session).tz
    if as_json:
        sys.stdout.write(json.dumps(_summary(r) | {
            "questions": [{"n": q + 1, "question": text, **r.tally(q)} for q, text in enumerate(r.questions)],
            "people": [{"id": p.person_id, "name": p.name, "town": p.town, "reason": p.reason,
                        "answers": list(p.answers), "verdict": p.verdict, "follow_up": p.follow_up,
                        "answered_at": p.answered_at.isoformat() if p.answered_at else None, "via": p.via,
                        "not_an_answer": p.not_answered_reply} for p in r.people]},
            ensure_ascii=False, indent=2) + "\n")
        return
    out = Console(highlight=False, soft_wrap=True)
    kept = r.frozen
    out.print(f"{r.headline} · {r.id} · {r.at.astimezone(tz):%Y-%m-%d %H:%M}", markup=False)
    from .domain.spotcheck import Sample

    _draw_lines(out, lang, r.id, kept.seed, Sample(kept.drawn, kept.available, kept.skipped, kept.size),
                kept.spotcheck.skip_days)
    if kept.during:
        out.print(_w("during", lang).format(id=kept.during), markup=False)
    tally = Table("#", _w("question", lang), _w("yes_h", lang), _w("no_h", lang), _w("none_h", lang))
    for q, text in enumerate(r.questions):
        counts = r.tally(q)
        tally.add_row(str(q + 1), escape(text), str(counts["yes"]),
                      f"[bold red]{counts['no']}[/]" if counts["no"] else "0", str(counts["none"]))
    out.print(tally)
    people = Table(_w("name", lang), _w("town", lang), _w("post", lang),
                   *(_w("q", lang).format(n=q + 1) for q in range(len(r.questions))), _w("result", lang))
    for p in r.people:
        style = {"ok": "green", "open": "yellow"}.get(p.verdict, "bold red")
        marks = [f"[bold red]{_MARK[m][0 if lang == 'zh' else 1]}[/]" if m == "no" else _MARK[m][0 if lang == "zh"
                                                                                                 else 1]
                 for m in p.answers]
        again = f" ({_w('again', lang)})" if p.not_answered_reply else ""
        people.add_row(escape(p.name), escape(p.town), escape(p.reason), *marks,
                       f"[{style}]{_w(p.verdict, lang)}[/]{escape(again)}")
    out.print(people)
    follow = r.follow_up
    if not follow:
        out.print(_w("nobody_follow", lang), markup=False)
        return
    out.print(f"[bold red]{_w('follow', lang).format(n=len(follow))}[/]")
    sep = "；" if lang == "zh" else "; "
    for p in follow:
        items = sep.join(f"{_w('q', lang).format(n=q + 1)} {r.questions[q]}: {_MARK[m][0 if lang == 'zh' else 1]}"
                         for q, m in enumerate(p.answers) if m != "yes")
        out.print(f"- {p.name}（{p.town}，{p.reason}）{items}", markup=False)


def _result(session: Any, spotcheck_id: str, lang: str) -> Any:
    from .cli import fail
    from .services import spotchecks
    from .services.warnings import possible_id

    message = f"no spot-check {spotcheck_id[:40]!r}" if lang == "en" else f"没有六问抽查 {spotcheck_id[:40]}"
    if not possible_id(spotcheck_id):
        raise fail(escape(message))
    try:
        return spotchecks.result(session, spotcheck_id)
    except spotchecks.UnknownSpotCheck:
        raise fail(escape(message)) from None


@spotcheck_app.command("audit")
def audit(
    spotcheck_id: Annotated[str, typer.Argument(help="the spot-check's id (from `jiaoying spotcheck list`)")],
    lang: LangOption = "zh",
) -> None:
    """Draw a spot-check's sample again from its seed (with the same people left out as checked lately,
    on the roster as it is now) and compare it with the record; exit 1 when they differ."""
    from .cli import database_url
    from .domain.spotcheck import draw
    from .services.site import current_site

    lang = checked_lang(lang)
    with transaction(database_url(), write=False) as session:
        r = _result(session, spotcheck_id, lang)
        site = current_site(session)
        kept = r.frozen
        again = draw(site, kept.spotcheck, kept.size, kept.seed, frozenset(kept.skipped))
        names = {p: site.people[p].name if p in site.people else p for p in {*kept.drawn, *again.drawn}}
    out = Console(highlight=False, soft_wrap=True)
    if again.drawn == kept.drawn:
        out.print(_w("audit_ok", lang).format(seed=kept.seed, n=len(kept.drawn)), markup=False)
        return
    out.print(_w("audit_bad", lang).format(seed=kept.seed), markup=False)
    table = Table("#", _w("recorded", lang), _w("redrawn", lang))
    for i in range(max(len(kept.drawn), len(again.drawn))):
        was = names[kept.drawn[i]] if i < len(kept.drawn) else ""
        now = names[again.drawn[i]] if i < len(again.drawn) else ""
        table.add_row(str(i + 1), escape(was), escape(now) if now == was else f"[bold red]{escape(now)}[/]")
    out.print(table)
    raise typer.Exit(1)
