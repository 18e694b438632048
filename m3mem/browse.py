"""A memory as a static, self-contained web site (no CDN, no server; opens from ``file://``).

    index.html          characters: face crops, names, voices with transcript lines, clips and
                        time spans they appear in, the Equivalence memories that joined them
    timeline-N.html     the clips, CLIPS_PER_PAGE per page: time, faces present, episodic and
                        semantic memories with mentions shown as the character's crop and name
    search.html         client-side search over every memory (``?q=words``); the sentences load
                        page by page as small scripts (search-N.js), so a 100-hour memory never
                        loads more than it needs and works from file://
    questions.html, q-N.html   with ``results`` (``m3mem eval --out``): each question, the
                        answer, the judges' verdicts and links to the evidence clips
    faces/eN.jpg        one crop per face node, loaded lazily
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from pathlib import Path

from m3mem.graph import MemoryGraph
from models.mentions import MENTION_RE

CLIPS_PER_PAGE = 60
CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3b57;color:#fff;padding:.6em 1.2em}header a{color:#cfe3ff;margin-right:1.2em}
main{padding:1em 1.2em;max-width:1100px}h1{font-size:1.3em;margin:.2em 0}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.7em 1em;margin:.7em 0}
.faces img,.who img{height:48px;width:48px;object-fit:cover;border-radius:4px;margin-right:4px}
.who img{height:22px;width:22px;vertical-align:middle;margin:0 2px 0 0}
.who{background:#eef4fb;border-radius:4px;padding:0 3px;text-decoration:none;color:#1f3b57}
.k{font-size:.75em;color:#fff;background:#6a8caf;border-radius:3px;padding:0 4px;margin-right:4px}
.k.semantic{background:#8a6aaf}.t{color:#666;font-size:.9em}ul{margin:.3em 0;padding-left:1.2em}
.pages a{margin-right:.5em}.ok{color:#2a7a2a}.bad{color:#a22}input{font-size:1em;width:60%;padding:.3em}
"""
# marks each image loaded (data-loaded=yes) or broken (no), so a headless browser can check them
IMG_JS = ("document.querySelectorAll('img').forEach(function(i){function m(){i.dataset.loaded="
          "i.naturalWidth>0?'yes':'no'}if(i.complete)m();else{i.addEventListener('load',m);"
          "i.addEventListener('error',m)}});")
SEARCH_JS = r"""
var q=new URLSearchParams(location.search).get('q')||'';document.getElementById('q').value=q;
var words=q.toLowerCase().match(/[\p{L}\p{N}']+/gu)||[],out=document.getElementById('hits'),n=0,page=0;
function norm(s){return s.toLowerCase()}
function show(rows){rows.forEach(function(r){var t=norm(r[3]);if(!words.length)return;
 for(var i=0;i<words.length;i++)if(t.indexOf(words[i])<0)return;if(n>=200)return;n++;
 var li=document.createElement('li');var a=document.createElement('a');
 a.href='timeline-'+r[0]+'.html#clip'+r[1];a.textContent='CLIP_'+r[1]+' '+r[2];li.appendChild(a);
 li.appendChild(document.createTextNode(' '+r[3]));out.appendChild(li)})}
window.searchPage=function(rows){show(rows);page++;next()};
function next(){if(page>=PAGES||!words.length){document.getElementById('status').textContent=
 words.length?(n+' memories found'):'type words to search';return}
 var s=document.createElement('script');s.src='search-'+page+'.js';document.body.appendChild(s)}
next();
"""


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Site:
    def __init__(self, graph: MemoryGraph, title: str):
        self.g, self.title = graph, title
        self.names = graph.names()
        self.clips = sorted(graph.clips)
        self.page_of = {c: k // CLIPS_PER_PAGE for k, c in enumerate(self.clips)}
        self.pages = max(1, (len(self.clips) + CLIPS_PER_PAGE - 1) // CLIPS_PER_PAGE)
        self.crop = {i: f"faces/e{i}.jpg" for i, e in graph.entities.items()
                     if e.kind == "face" and e.contents and isinstance(e.contents[0], (bytes, bytearray))}

    def label(self, character: int) -> str:
        return self.names.get(character) or f"character_{character}"

    def who(self, kind: str, entity: int) -> str:
        """A mention as the character's crop and name, linked to the character."""
        c = self.g.character_of(entity)
        faces = [e for e in self.g.character_entities(c) if e in self.crop]
        img = f'<img loading="lazy" alt="" src="{self.crop[faces[0]]}">' if faces else ""
        voice = ' <span class="t">(voice)</span>' if kind == "voice" else ""
        return (f'<a class="who" href="index.html#c{c}" title="&lt;{kind}_{entity}&gt;">{img}'
                f'{_esc(self.label(c))}{voice}</a>')

    def render(self, text: str) -> str:
        """Escaped text with ``<face_N>`` / ``<voice_N>`` / ``<character_N>`` rendered."""
        out, last = [], 0
        for m in MENTION_RE.finditer(text):
            kind, i = m.group(1), int(m.group(2))
            out.append(_esc(text[last:m.start()]))
            if kind in ("face", "voice") and i in self.g.entities and self.g.entities[i].kind == kind:
                out.append(self.who(kind, i))
            elif kind == "character" and (members := self.g.character_entities(i)):
                out.append(self.who(self.g.entities[members[0]].kind, members[0]))
            else:
                out.append(_esc(m.group(0)))
            last = m.end()
        return "".join(out) + _esc(text[last:])

    def page(self, title: str, body: str, script: str = "") -> str:
        nav = ('<a href="index.html">Characters</a><a href="timeline-0.html">Timeline</a>'
               '<a href="search.html">Search</a>')
        return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
                f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head>'
                f'<body><header><b>{_esc(self.title)}</b> &nbsp; {nav}</header><main>{body}</main>'
                f'<script>{IMG_JS}{script}</script></body></html>\n')

    def link(self, clip: int) -> str:
        return f"timeline-{self.page_of[clip]}.html#clip{clip}"


def build_site(graph: MemoryGraph, out: str | Path, title: str = "memory",
               results: list[dict] | None = None) -> dict:
    """Write the site into ``out``; returns {pages, bytes, largest_page_bytes}."""
    out = Path(out)
    (out / "faces").mkdir(parents=True, exist_ok=True)
    site, g = Site(graph, title), graph
    files: dict[str, str | bytes] = {}
    for i, path in site.crop.items():
        files[path] = bytes(g.entities[i].contents[0])

    # characters
    appears: dict[int, dict[int, None]] = defaultdict(dict)
    for t in g.texts.values():
        for e in t.entities:
            if e in g.entities:
                appears[g.character_of(e)][t.clip] = None
    evidence: dict[int, list[int]] = defaultdict(list)
    for n in g.texts:
        if g.is_equivalence_node(n):
            for e in sorted({g.character_of(e) for e in g.texts[n].entities if e in g.entities}):
                evidence[e].append(n)
    cards = []
    for c, members in sorted(g.characters().items()):
        faces = "".join(f'<img loading="lazy" alt="face_{e}" src="{site.crop[e]}">' for e in members if e in site.crop)
        voices = [e for e in members if g.entities[e].kind == "voice"]
        lines = "".join(f"<li>&lt;voice_{v}&gt; {_esc(str(line))}</li>" for v in voices
                        for line in g.entities[v].contents[:3] if isinstance(line, str))
        clips = sorted(appears.get(c, {}))
        spans = ", ".join(f'<a href="{site.link(k)}">{_clock(g.clips[k][0])}-{_clock(g.clips[k][1])}</a>'
                          for k in clips[:40]) + (f" and {len(clips) - 40} more" if len(clips) > 40 else "")
        eq = "".join(f"<li>{_esc(g.texts[n].text)} (CLIP_{g.texts[n].clip})</li>" for n in evidence.get(c, [])[:5])
        ids = ", ".join(f"&lt;{g.entities[e].kind}_{e}&gt;" for e in members)
        cards.append(f'<div class="card character" id="c{c}"><h2 class="name">{_esc(site.label(c))}</h2>'
                     f'<div class="faces">{faces}</div><div class="t">{ids} · {len(clips)} clips</div>'
                     + (f"<b>Voice</b><ul>{lines}</ul>" if lines else "")
                     + (f"<b>Same person because</b><ul>{eq}</ul>" if eq else "")
                     + (f"<div>Appears at {spans}</div>" if spans else "") + "</div>")
    files["index.html"] = site.page(f"{title}: characters",
                                    f"<h1>{len(cards)} characters · {len(site.clips)} clips</h1>" + "".join(cards))

    # timeline pages and search shards
    nav = '<div class="pages">' + "".join(f'<a href="timeline-{p}.html">{p + 1}</a>' for p in range(site.pages)) + "</div>"
    for p in range(site.pages):
        blocks, rows = [], []
        for k in site.clips[p * CLIPS_PER_PAGE:(p + 1) * CLIPS_PER_PAGE]:
            start, end = g.clips[k]
            texts = [g.texts[n] for n in g.clip_texts.get(k, [])]
            present = sorted({e for t in texts for e in t.entities if e in site.crop})
            faces = "".join(site.who("face", e) for e in present)
            items = "".join(f'<li><span class="k {t.kind}">{t.kind[0].upper()}</span>{site.render(t.text)}</li>'
                            for t in texts)
            blocks.append(f'<div class="card clip" id="clip{k}"><b>CLIP_{k}</b> <span class="t">{_clock(start)}'
                          f'-{_clock(end)}</span> {faces}<ul>{items}</ul></div>')
            rows += [[p, k, _clock(start), g.translated_text(t.id)] for t in texts]
        files[f"timeline-{p}.html"] = site.page(f"{title}: timeline {p + 1}", f"<h1>Timeline, page {p + 1} of "
                                                f"{site.pages}</h1>{nav}" + "".join(blocks) + nav)
        files[f"search-{p}.js"] = f"searchPage({json.dumps(rows, ensure_ascii=False)});\n"
    files["search.html"] = site.page(
        f"{title}: search", '<h1>Search the memories</h1><form><input id="q" name="q" autofocus> '
        '<button>Search</button></form><p id="status" class="t">searching…</p><ol id="hits"></ol>',
        f"var PAGES={site.pages};" + SEARCH_JS)

    # evaluation results
    if results:
        qs = []
        for k, r in enumerate(results):
            verdicts = " ".join(f'<span class="{"ok" if v else "bad"}">{_esc(j)}: {"right" if v else "wrong"}</span>'
                                for j, v in (r.get("verdicts") or {}).items())
            ev = " ".join(f'<a href="{site.link(c)}">CLIP_{c}</a>' for c in r.get("evidence") or [] if c in site.page_of)
            files[f"q-{k}.html"] = site.page(f"{title}: question {r.get('question_id')}", (
                f'<h1>{_esc(str(r.get("question", "")))}</h1><div class="card"><p><b>Answer</b> '
                f'<span class="answer">{_esc(str(r.get("answer", "")))}</span></p><p><b>Expected</b> '
                f'{_esc(str(r.get("truth", "")))}</p><p>{verdicts}</p><p><b>Evidence</b> {ev or "none"}</p>'
                + (f'<p class="bad">{_esc(str(r["error"]))}</p>' if r.get("error") else "") + "</div>"))
            qs.append(f'<li><a href="q-{k}.html">{_esc(str(r.get("question", "")))}</a> {verdicts}</li>')
        files["questions.html"] = site.page(f"{title}: questions", f"<h1>{len(results)} questions</h1><ol>{''.join(qs)}</ol>")

    sizes = {}
    for name, data in files.items():
        path = out / name
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
        sizes[name] = path.stat().st_size
    pages = {k: v for k, v in sizes.items() if k.endswith((".html", ".js"))}
    return {"files": len(sizes), "pages": len(pages), "bytes": sum(sizes.values()),
            "largest_page": max(pages, key=pages.get), "largest_page_bytes": max(pages.values())}
