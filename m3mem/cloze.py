"""Questions that restate a spoken sentence: the words of that sentence the question leaves out.

People ask about what was said in the words that were said: "What was everybody familiar with
because of their wartime experiences?" over "...where everybody was familiar with ideas like the
black market because of their wartime experiences." Most of the question's words line up with one
sentence of the speech shown, and the answer is the part of that sentence they leave out (here
"ideas like the black market"). A small chat model often takes the wrong phrase of such a line or
restates the question; the agent uses this as a check on its answer (``m3mem.agent``).

Only speech in quotation marks is read (``"..."`` at the end of a memory, as every memorizer writes
what someone says); a clip's lines are joined in their order before they are cut into sentences,
because speech is cut into memories where the speaker window changes, often mid-sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from m3mem.quoting import NUMBER_WORDS, content_words

_IRREGULAR = {"said": "say", "says": "say", "does": "do", "did": "do", "done": "do", "has": "have", "had": "have",
              "went": "go", "goes": "go", "gone": "go", "told": "tell", "made": "make", "saw": "see",
              "seen": "see", "drove": "drive", "driven": "drive", "took": "take", "taken": "take",
              "gave": "give", "given": "give", "came": "come", "got": "get", "knew": "know",
              "known": "know", "thought": "think", "found": "find", "left": "leave", "brought": "bring",
              "bought": "buy", "began": "begin", "begun": "begin", "ran": "run", "spoke": "speak",
              "spoken": "speak", "wrote": "write", "written": "write", "heard": "hear", "felt": "feel",
              "kept": "keep", "meant": "mean", "sent": "send", "spent": "spend", "built": "build",
              "held": "hold", "lost": "lose", "met": "meet", "paid": "pay", "sold": "sell", "won": "win",
              "wore": "wear", "worn": "wear", "ate": "eat", "eaten": "eat", "flew": "fly", "grew": "grow",
              "threw": "throw", "broke": "break", "broken": "break", "chose": "choose", "fell": "fall",
              "stood": "stand", "taught": "teach", "caught": "catch", "fought": "fight", "became": "become",
              "children": "child", "men": "man", "women": "woman", "people": "person", "wives": "wife"}


def stem(word: str) -> str:
    """A word's form for comparing an answer or a line with a question: "says" / "said" / "say",
    "lives" / "lived" / "living" / "live", "drove" / "drive" alike."""
    word = _IRREGULAR.get(word, word)
    if len(word) > 4 and word.endswith(("ies", "ied")):
        return word[:-3] + "y"  # "tries" / "tried" / "try"
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


# words that frame a question about speech rather than restate it ("What does the woman say she ...")
_FRAME = {stem(w) for w in "say tell mention speak talk speaker speech video clip according word words person someone "
          "man woman people somebody".split()}
_AUX = {"do", "does", "did", "should", "would", "could", "can", "will", "shall", "may", "might", "must", "been",
        "being", "am"}
_NEGATION = {"not", "no", "never", "nothing", "nobody", "none", "neither", "nor"}
_PREPOSITION = {"with", "to", "for", "about", "on", "at", "from", "of", "in", "into", "by", "after", "before"}
_WH = {"what", "which", "whose", "who", "whom", "where", "when", "why", "how"}
_KIND = {"kind", "type", "sort"}  # "what kind of X": the head is X
_QUANTITY = {"many", "much", "long", "far", "old", "often", "big", "large", "tall", "high", "soon"}
_YES_NO = re.compile(r"^\s*(?:is|are|was|were|do|does|did|can|could|has|have|had|will|would|should|must|"
                     r"shall|may|might)\b", re.IGNORECASE)
_NUMBER = re.compile(r"^(?:\d[\d,.]*|zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                     r"thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|"
                     r"fifty|sixty|seventy|eighty|ninety|hundred|hundreds|thousand|thousands|million|"
                     r"millions|billion|billions|half|quarter|dozen|dozens|couple|few|several)$", re.IGNORECASE)
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)*(?:[.,][0-9]+)*|[.,;:!?]")
_CONTRACTION = {"n't": "not", "'re": "are", "'m": "am", "'ll": "will", "'ve": "have", "'d": "would", "'s": ""}
_BASE = {"won": "will", "can": "can", "don": "do", "doesn": "do", "didn": "do", "isn": "is", "aren": "are",
         "wasn": "was", "weren": "were", "haven": "have", "hasn": "have", "hadn": "have", "couldn": "could",
         "wouldn": "would", "shouldn": "should", "ain": "is"}
_SPOKEN = re.compile(r'"([^"]*)"\s*$')  # a memory ending with quoted speech
_ENDS = {".", "?", "!"}
# words that carry no answer by themselves (a run of only these is not one)
_FUNCTION = set("been being have has had do does did will would can could should may might must shall am there here "
                "just also very really so then now me my you your him us our mine yours ours these those "
                "if but because about up down out over into from than too still yes yeah oh well like let lets okay ok "
                "um uh hmm please right sure thanks gonna wanna myself yourself himself herself itself ourselves "
                "yourselves themselves".split())
_GLUE = {"and", "or", "but", "so", "is", "are", "was", "were", "be", "that", "which", "who", "with", "then"}
_CONTRAST = {"not", "never"}  # a short sentence starting so carries on the one before it ("... quality. Not on price.")
_CLAUSE = {"because", "but", "while", "although", "though", "unless", "whereas", "since"}  # an after-run stops there
_WHERE = {"at", "in", "on", "near", "inside", "under", "behind", "from", "to", "into", "outside", "by", "across",
          "over", "around", "through", "beside", "between", "above", "below"}
# words that answer "where" by themselves though they carry no meaning elsewhere ("up here", "down there")
_HERE = {"here", "there", "upstairs", "downstairs", "inside", "outside", "home", "away", "nearby", "abroad"}
_WHEN = {"in", "on", "at", "during", "after", "before", "since", "until", "last", "next", "every", "yesterday",
         "today", "tomorrow", "tonight", "ago", "when"}
_ABOUT = {"a", "an", "about", "around", "over", "under", "nearly", "almost", "some", "roughly", "just", "only"}
_SPELLED = {str(n): w for n, w in NUMBER_WORDS.items()}
MOST = 8  # words of an answer read past the question's last word in the sentence


@dataclass(frozen=True)
class Cloze:
    answer: str  # the words of the sentence the question leaves out
    sentence: str  # the spoken sentence the question restates
    matched: int  # the question's words found in it
    asked: int  # the question's words that could be
    clip: int = 0  # where it was found: the index of its clip in the list searched
    words: frozenset[str] = frozenset()  # the question's words a sentence may restate (stems)
    headed: bool = False  # the answer is the words next to the wh-phrase's head ("what kind of bicycles" -> "old")

    def words_in(self, text: str) -> int:
        """How many of those words ``text`` holds."""
        return len(self.words & {f for t in _TOKEN.findall(text) if t[0].isalnum() for f in _forms(t)})


def _words(token: str) -> list[str]:
    """The plain words a spoken token stands for ("I'm" -> i, am; "don't" -> do, not)."""
    low = token.lower()
    m = re.match(r"^([a-z0-9]+?)(n't|'re|'m|'ll|'ve|'d|'s)?$", low)
    if not m or not m.group(2):
        return [low]
    base = _BASE.get(m.group(1) + "n", m.group(1)) if m.group(2) == "n't" else m.group(1)
    return [base] + ([_CONTRACTION[m.group(2)]] if _CONTRACTION[m.group(2)] else [])


def _forms(token: str) -> list[str]:
    """The same, stemmed."""
    return [stem(w) for w in _words(token)]


def meaningful(text: str, but: str = "") -> set[str]:
    """The words of ``text`` that can carry an answer (no stop, auxiliary or filler words), as
    stems, leaving out the words of ``but`` (a question)."""
    def norm(word: str) -> str:  # a number in digits or in words alike
        return stem(_SPELLED.get(word, word))

    known = {norm(w) for t in _TOKEN.findall(but) for w in _words(t)}
    return {norm(w) for t in _TOKEN.findall(text) for w in _words(t)
            if content_words(w) and w not in _FUNCTION and w not in _AUX and norm(w) not in known}


def spoken(memory: str) -> str | None:
    """The quoted speech a memory ends with (None: not speech)."""
    m = _SPOKEN.search(memory)
    return m.group(1).strip() if m else None


def _sentences(texts: list[str]) -> list[list[str]]:
    """The spoken sentences of one clip's memories (their quoted speech joined in order), as tokens.
    A line that starts with a capital letter (not "I") after one left unpunctuated starts a new
    sentence: speech is cut into lines where the speaker window changes, and an unpunctuated
    transcript ends there as well as anywhere. A short contrast that a pause made a sentence of
    its own ("... competes on quality. Not on price.") stays with the sentence it contrasts."""
    out, cur = [], []
    for text in texts:
        tokens = _TOKEN.findall(spoken(text) or "")
        if cur and tokens and tokens[0][0].isupper() and _words(tokens[0])[0] != "i":
            out.append(cur)
            cur = []
        for t in tokens:
            cur.append(t)
            if t in _ENDS:
                out.append(cur)
                cur = []
    out += [cur] if cur else []
    joined: list[list[str]] = []
    for x in out:  # "The BBC competes on quality. Not on price.": one sentence, the contrast kept
        words = [t for t in x if t[0].isalnum()]
        if joined and joined[-1][-1] in _ENDS and words and words[0].lower() in _CONTRAST and len(words) <= 4:
            joined[-1] = joined[-1][:-1] + [",", x[0].lower()] + x[1:]
        else:
            joined.append(x)
    return joined


def sentences(texts: list[str]) -> list[str]:
    """The spoken sentences of one clip's memories (``texts``, in time order), as text."""
    return [_text(tokens) for tokens in _sentences(texts)]


def _question(question: str) -> tuple[set[str], str | None, bool]:
    """The question's words a sentence may restate (stems), the head of its wh-phrase ("what
    experiences" -> experience; "how many users" -> user), and whether it asks for a quantity."""
    words = re.findall(r"[a-z0-9]+(?:'[a-z]+)?", question.lower())
    wh = next((i for i, w in enumerate(words) if w in _WH), -1)
    aux = wh + 1 if wh + 1 < len(words) and words[wh + 1] in _AUX else None  # "what does ...", "how should ..."
    asked = {stem(w) for i, w in enumerate(words) if i != aux and w not in _WH and content_words(w)} - _FRAME
    head, quantity = None, False
    if wh >= 0:
        w, rest = words[wh], words[wh + 1:]
        if w == "how" and rest and rest[0] in _QUANTITY:
            asked.discard(stem(rest[0]))  # "how long a walk" restates "walk", not "long"
            quantity, rest = True, rest[1:]
        if rest and rest[0] in _KIND and len(rest) > 2 and rest[1] == "of":
            asked.discard(stem(rest[0]))  # "what kind of X" restates X, not "kind"
            rest = rest[2:]
        if w in ("what", "which", "whose") or quantity:
            nxt = next((x for x in rest[:2] if x not in ("a", "an", "the", "of")), None)
            if nxt and nxt not in _AUX and content_words(nxt) and stem(nxt) in asked:
                head = stem(nxt)
    return asked, head, quantity


def _object(question: str) -> bool:
    """Whether the wh-word is an object ("Who did they work with?"), not the subject ("Who sells
    bicycles?")."""
    words = re.findall(r"[a-z]+", question.lower())
    wh = next((i for i, w in enumerate(words) if w in _WH), None)
    return bool(words) and (words[-1] in _PREPOSITION or (wh is not None and wh + 1 < len(words)
                                                           and words[wh + 1] in ("do", "does", "did")))


def _wh(question: str) -> str:
    """The question's wh-word ("" when none)."""
    return next((w for w in re.findall(r"[a-z]+", question.lower()) if w in _WH), "")


def _phrase(tokens: list[str], keep: set[str] = frozenset()) -> str:
    words = list(tokens)
    while words and (words[0].lower() in _GLUE or not words[0][0].isalnum()):
        words.pop(0)
    while words and (not words[-1][0].isalnum() or not (meaningful(words[-1]) or words[-1].lower() in keep)):
        words.pop()
    return _text(words)


def _text(tokens: list[str]) -> str:
    """Tokens as the words and punctuation of a text."""
    return re.sub(r" ([.,;:!?])", r"\1", " ".join(tokens))


def restated_line(question: str, clips: list[list[str]], least: float = 0.6, single: bool = False) -> Cloze | None:
    """The answer a question gets from the spoken sentence it restates, among ``clips`` (each a
    clip's memories, in order): the sentence holding the most of the question's words (at least
    two, and at least ``least`` of them), and in it the run of words they leave out: the one next
    to the head of the wh-phrase ("what experiences" -> "wartime"), else the longest run between
    the question's words, else the words after them (up to the clause's end, ``MOST`` at most), or
    before them for "who". None for a yes-no question, one that quotes words (the navigation reads
    those), or when no sentence lines up, or the run asked for is not there (no number for "how
    many"). ``single``: a question with one word that can carry meaning ("What grabbed her?")
    restates the one sentence that holds it, if only one does."""
    if _YES_NO.search(question) or '"' in question or re.search(r"(?:^|\s)'[^']+'", question):
        return None
    asked, head, quantity = _question(question)
    if single and len(asked - _FUNCTION) == 1:
        asked, head = asked - _FUNCTION, None  # "What is the speaker wondering about?": "wonder"
    elif len(asked) < 2:
        return None
    found = []  # per sentence: (words matched, -crossed, -stretch), the words around them, each word's matches, clip
    span = 2 * len(asked) + 6  # the question's words lie this close together in the sentence
    qwords = re.findall(r"[a-z0-9]+", question.lower())
    joined = {a + b: {stem(a), stem(b)} & asked for a, b in zip(qwords, qwords[1:])}  # "dress making": "dressmaking"
    negated = bool(_NEGATION & set(qwords)) or "n't" in question.lower()
    for where, texts in enumerate(clips):
        # each sentence with the question's words each of its tokens matches
        said_here = [(x, [(set(_forms(t)) | joined.get(t.lower().replace("-", ""), set())) & asked
                          if t[0].isalnum() else set() for t in x]) for x in _sentences(texts)]
        if negated:  # "What does the BBC not compete on?" does not restate "The BBC competes on quality."
            said_here = [(x, f) for x, f in said_here if _NEGATION & {w for t in x for w in _forms(t)}]
        # a sentence, or two in a row (a transcript ends sentences where a speaker only pauses:
        # "We need some bottles or jars. Make Molotov cocktails."), one on a tie; not for a negated
        # question, whose negation must hold in the sentence that answers it
        pieces = [(x, f, 0) for x, f in said_here]
        if not negated:
            pieces += [(a + b, fa + fb, 1) for (a, fa), (b, fb) in zip(said_here, said_here[1:])]
        for sentence, forms, crossed in pieces:
            at, best = [k for k, f in enumerate(forms) if f], None
            for a in at:  # the tightest stretch holding the most of the question's words
                stretch = [k for k in at if a <= k < a + span]
                hits = set().union(*(forms[k] for k in stretch))
                if len(hits) < min(2, len(asked)) or len(hits) < least * len(asked):
                    continue
                key = (len(hits), -crossed, -(stretch[-1] - a))
                if best is None or key > best[0]:
                    lo, hi = max(0, a - MOST), min(len(sentence), stretch[-1] + MOST + 1)
                    best = (key, sentence[lo:hi], forms[lo:hi], where)
            if best is not None:
                found.append(best)
    found.sort(key=lambda x: x[0], reverse=True)
    if len(asked) == 1 and sum(key == (1, 0, 0) for key, *_ in found) > 1:
        return None  # the word is said in more than one sentence: which one is meant is not known
    for key, sentence, forms, where in found:  # the best first; one with as many words next when it has no answer
        if key[0] < found[0][0][0]:
            break
        left = _leftover(question, sentence, forms, head, quantity, negated)
        if left:
            return Cloze(left[0], _phrase(sentence), key[0], len(asked), where, frozenset(asked), left[1])
    return None


def _leftover(question: str, sentence: list[str], forms: list[set[str]], head: str | None,
              quantity: bool, negated: bool = False) -> tuple[str, bool] | None:
    """The run of ``sentence`` (tokens; ``forms``: the question's words each one matches) that the
    question (``negated``: it says "not") leaves out and asks for (``restated_line``), and whether
    it is the one next to the wh-phrase's head; or None."""
    wh = _wh(question)
    on = [bool(f) for f in forms]
    first, last = on.index(True), len(on) - 1 - on[::-1].index(True)
    runs, i = [], 0  # (start, end) of the runs of words the question leaves out
    while i < len(sentence):
        if on[i]:
            i += 1
            continue
        j = i
        while j < len(sentence) and not on[j] and sentence[j] not in _ENDS:
            j += 1
        if j > i:
            runs.append((i, j))
        i = max(j, i + 1)

    here = _HERE if wh == "where" else set()  # "Where are they better off?" -> "up here"

    def new(run: tuple[int, int]) -> set[str]:  # the run's words that can answer, none of them the question's
        return meaningful(" ".join(sentence[run[0]:run[1]]), question) | \
            {t.lower() for t in sentence[run[0]:run[1]]} & here

    def clipped(run: tuple[int, int]) -> tuple[int, int]:
        a, b = run
        if a > last:  # after the question's words: to the clause's end
            b = a
            while b < run[1] and b - a < MOST and sentence[b] not in {";", ":"} and sentence[b].lower() not in _CLAUSE:
                b += 1
        elif b <= first:  # before them: from the clause's start
            a = b
            while a > run[0] and b - a < MOST and sentence[a - 1] not in {",", ";", ":"}:
                a -= 1
        return a, b

    if negated:  # "What does the BBC not compete on?" over "... competes on quality, not on price": after the "not"
        nots = [k for k in range(last + 1, len(sentence)) if _NEGATION & set(_forms(sentence[k]))]
        if nots:
            runs = [(max(a, nots[0] + 1), b) for a, b in runs if b > nots[0] + 1]
    runs = [clipped(r) for r in runs]
    runs = [r for r in runs if new(r)]
    if quantity:
        runs = [r for r in runs if any(_NUMBER.match(t) for t in sentence[r[0]:r[1]])]
    if not runs:
        return None
    chosen, headed = None, False
    if head is not None:
        at = [k for k, f in enumerate(forms) if head in f]
        for k in at:
            chosen = next((r for r in runs if r[1] == k), None) or next((r for r in runs if r[0] == k + 1), None)
            if chosen:
                words = sentence[chosen[0]:chosen[1]] + ([sentence[k]] if chosen[1] == k else [])
                headed = True
                break
    if chosen is None:
        inside = [r for r in runs if first < r[0] and r[1] <= last]
        after = [r for r in runs if r[0] > last]
        before = [r for r in runs if r[1] <= first]
        # "who": the subject, before the question's words; "how" (the manner): after them; else
        # what the question's words enclose, else what follows them
        groups = [before, after, inside] if wh == "who" and not _object(question) else \
            [after, inside, before] if wh == "how" else [inside, after, before]
        chosen = max(next(g for g in groups if g), key=lambda r: len(new(r)))
        words = sentence[chosen[0]:chosen[1]]
    place = _WHERE if wh == "where" else _WHEN if wh == "when" else None
    if quantity:  # "how many": from the number ("a quarter of a million", "about twenty")
        k = next(k for k, t in enumerate(words) if _NUMBER.match(t))
        words = words[k - 1 if k and words[k - 1].lower() in _ABOUT else k:]
    elif place is not None:  # "where" / "when": from the first word that says a place / a time
        k = next((k for k, t in enumerate(words) if t.lower() in place | here or _NUMBER.match(t)), None)
        if k is None:
            return None
        words = words[k - 1 if k and here and words[k].lower() in here and words[k - 1].lower() in
                      ("up", "down", "back", "out") else k:]
    answer = _phrase(words, here)
    return (answer, headed) if meaningful(answer, question) or set(answer.lower().split()) & here else None
