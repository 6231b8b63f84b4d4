"""Prompt layouts: how a description becomes a code prompt, how a completion becomes a program, what a
training / scoring target is, and how code is described. One object per layout (``prompt.layout``):

``chat``     instruct models (the embedded default SmolLM2-135M-Instruct): the tokenizer's chat template; the
             model answers with a fenced code block, usually with prose around it.
``authors``  base models, the authors' completion layout (DeepSeek-Coder-6.7B-base, CodeLlama-7B): the
             reference's lines up to its first ``def`` line, then the description as an indented docstring
             *inside* the function, with MBPP's first test as a doctest example::

                 import re
                 def remove_spaces(text):
                     \"\"\" Write a function to remove all whitespaces from a string.
                     >>> remove_spaces('a b')
                     'ab'
                     \"\"\"

             (APPS+ / CodeInsight, which show no example: ``    \"\"\" <description>\"\"\"`` on one line.)
             The program is the prompt plus the completion cut at the first top-level statement; the code
             is described with the one-shot ``###Code: / ###Description of the given code:`` prompt.

Every rule gets its layout from ``layout(cfg)`` (or ``layout(cfg, sampler=True)`` for the model that
samples the pools), so sampling, perplexity, training and evaluation always agree. docs/fidelity.md lists
where the authors' code and this project differ, and the switch for each.
"""

from __future__ import annotations

import ast
import re

SYSTEM = "You are an expert Python programmer."
DESCRIPTION_STOPS = ["\n###"]
LAYOUTS = ("chat", "authors")
TARGETS = ("after_first_def", "after_entry_def")

# The one in-context example of the rewrite prompt (RFT+RD; written for this project).
REWRITE_EXAMPLE = (
    "Write a function to find the maximum of two numbers.",
    "Implement a function that takes two numbers and returns the larger one.",
)


def truncate(text: str, stops) -> str:
    """Cut ``text`` at the first of ``stops``."""
    cut = len(text)
    for s in stops or ():
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
        return True
    except SyntaxError:
        return False


def strip_docstrings(code: str) -> str:
    """The code without docstrings (what the chat layout summarises); unchanged if it does not parse."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(getattr(body[0], "value", None), ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree) + "\n"


FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.S)


def extract_fenced(text: str) -> str:
    """The program in a chat answer: the first fenced block that parses as Python (```python blocks first;
    an unterminated final block counts); without fences, the text from the first def/import line on."""
    blocks = [(lang.lower(), body) for lang, body in FENCE.findall(text)]
    blocks.sort(key=lambda b: b[0] not in ("python", "py", "python3"))
    for _, body in blocks:
        body = body.strip("\n")
        if body.strip() and _parses(body):
            return body + "\n"
    if blocks and blocks[0][1].strip():
        return blocks[0][1].strip("\n") + "\n"
    m = re.search(r"^(def |import |from |class )", text, re.M)
    return (text[m.start() :].strip("\n") + "\n") if m else ""


def cut_after_fence(text: str) -> str:
    """A chat answer up to the end of its first closed code fence (servers cannot stop on 'the second ```')."""
    first = text.find("```")
    if first == -1:
        return text
    second = text.find("```", first + 3)
    return text if second == -1 else text[: second + 3]


class ChatLayout:
    """Instruct models: chat-template prompts, fenced answers, problem-statement descriptions."""

    name = "chat"
    fence_stop = True

    def __init__(self, max_chars: int | None = 600, **_):
        self.max_chars = max_chars

    # description -> code
    @staticmethod
    def request(description: str, problem: dict) -> str:
        parts = [description.strip()]
        if problem.get("example"):
            parts.append(f"Your code should pass this test:\n{problem['example'].strip()}")
        elif problem.get("header"):
            parts.append(f"Use this function signature:\n{problem['header'].strip()}")
        parts.append("Write the complete Python function in one ```python code block.")
        return "\n\n".join(parts)

    def code_prompt(self, tok, description: str, problem: dict) -> str:
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": self.request(description, problem)},
        ]
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def stops(self, problem: dict | None = None, stage: str = "chain"):
        return None

    def extract(self, completion: str, problem: dict, prompt: str = "", stage: str = "chain") -> str:
        return extract_fenced(completion)

    # training and scoring
    def target(self, code: str, problem: dict) -> str:
        return f"```python\n{code.strip(chr(10))}\n```"

    def ppl_pair(self, tok, code: str, problem: dict, description: str, source_description: str | None = None):
        return self.code_prompt(tok, description, problem), self.target(code, problem)

    # code -> description
    def describe_code(self, code: str) -> str:
        return strip_docstrings(code).strip("\n")

    def describe_prompt(self, tok, code: str, example: tuple[str, str]) -> str:
        ex_code, ex_desc = example
        ask = (
            "Describe the task that this Python code solves, in one or two sentences, "
            "as a programming problem statement.\n\n###Code:\n"
        )
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": ask + self.describe_code(ex_code)},
            {"role": "assistant", "content": ex_desc.strip()},
            {"role": "user", "content": ask + self.describe_code(code)},
        ]
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    description_stops = None

    def clean_description(self, text: str) -> str:
        """Cut at ``###``, drop code fences and any code after them, squash blank lines, at most ``max_chars``."""
        text = truncate(text, ["###", "```"]).strip()
        text = re.sub(r"\n\s*\n+", "\n", text)
        return (text[: self.max_chars] if self.max_chars else text).strip()

    def rewrite_prompt(self, tok, description: str, example: tuple[str, str] = REWRITE_EXAMPLE) -> str:
        ex_src, ex_new = example
        ask = (
            "Rewrite this programming task description in different words, "
            "keeping its meaning and every detail.\n\n###Description:\n"
        )
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": ask + ex_src.strip()},
            {"role": "assistant", "content": ex_new.strip()},
            {"role": "user", "content": ask + description.strip()},
        ]
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


_DEF_LINE = re.compile(r"\s*(?:async\s+)?def\s")
# the authors' completion stops (their MBPP evaluation keeps "\nassert" lines and, like their MBPP chain,
# cuts at "\ndef " only after the entry function; APPS+ and CodeInsight cut at every "\ndef")
_STOPS = ["\nclass", "\nif", "\n#", "\nprint"]


def _normalise(code: str) -> str:
    return code.replace("\t", "    ").replace("\r", "")


def head(reference: str) -> str:
    """The reference's lines up to and including its first ``def`` line (imports, constants, a helper's
    signature if a helper comes first): the authors' "import and head"."""
    lines = _normalise(reference).split("\n")
    for i, line in enumerate(lines):
        if _DEF_LINE.match(line):
            return "\n".join(lines[: i + 1])
    raise ValueError("prompt.layout authors: the reference has no def line (the authors' layout needs a function)")


def doctest(example: str) -> str:
    """MBPP's first test as the authors show it: ``    >>> <call>`` then ``    <expected>``, split at the
    ``==`` of ``assert <call> == <expected>`` (an assert without ``==`` shows ``True``)."""
    parts = example.split("==")
    call = parts[0].split("assert")[-1].strip()
    if len(parts) < 2:
        return f"    >>> {call}\n    True"
    return f"    >>> {call}\n    {parts[1].strip()}"


def strip_docstring_blocks(code: str) -> str:
    """Remove every indented triple-quoted block with its newline (``    \"\"\"...\"\"\"\\n``): the chain's
    description docstring leaves the code before it is described or trained on."""
    out, pos = [], 0
    while True:
        start = code.find('    """', pos)
        if start == -1:
            break
        end = code.find('"""\n', start + 7)
        if end == -1:
            break
        out.append(code[pos:start])
        pos = end + 4
    out.append(code[pos:])
    return "".join(out)


def _is_mbpp(problem: dict) -> bool:
    return str(problem.get("task_id", "")).lower().startswith("mbpp/")


def _cut_after_entry(completion: str, entry: str) -> str:
    """MBPP: keep the functions up to and including the entry function when the completion defines it;
    else cut at the first new ``def``."""
    if entry and f"def {entry}(" in completion:
        parts = completion.split("\ndef ")
        parts = [parts[0]] + ["def " + x for x in parts[1:]]
        for i, part in enumerate(parts):
            if f"def {entry}(" in part:
                return "\n\n".join(parts[: i + 1])
    return truncate(completion, ["\ndef "])


class AuthorsLayout:
    """Base models, the authors' completion layout (see the module docstring)."""

    name = "authors"
    fence_stop = False

    def __init__(self, target: str = "after_first_def", max_chars: int | None = None, **_):
        if target not in TARGETS:
            raise ValueError(f"train.target: {target!r} ({' | '.join(TARGETS)})")
        self.target_rule = target
        self.max_chars = max_chars

    # description -> code
    def code_prompt(self, tok, description: str, problem: dict) -> str:
        h = head(problem["reference"])
        if problem.get("example"):
            return f'{h}\n    """ {description}\n{doctest(problem["example"])}\n    """\n'
        return f'{h}\n    """ {description}"""\n'

    def stops(self, problem: dict | None = None, stage: str = "chain") -> list[str]:
        """The authors' stop strings: ``\nclass \nif \n# \nprint \ndef \nassert``; for MBPP no ``\ndef``
        (functions up to the entry function stay, see ``extract``) and, when evaluating, no ``\nassert``."""
        if problem is not None and _is_mbpp(problem):
            return _STOPS + (["\nassert"] if stage == "chain" else [])
        return _STOPS + ["\ndef", "\nassert"]

    def extract(self, completion: str, problem: dict, prompt: str = "", stage: str = "chain") -> str:
        """The program: the prompt plus the completion cut at the first stop string; MBPP keeps the
        functions up to and including the entry function, then cuts at the next ``def``."""
        cut = truncate(completion, self.stops(problem, stage))
        if _is_mbpp(problem):
            cut = _cut_after_entry(cut, problem.get("entry_point", ""))
        return prompt + cut

    # training and scoring
    def target(self, code: str, problem: dict) -> str:
        """What the model learns to emit after the seed prompt: the code without its docstring block,
        everything after its first ``def`` line (``after_first_def``, the authors), or only the lines after
        the entry function's ``def`` (``after_entry_def``)."""
        code = _normalise(strip_docstring_blocks(code))
        if self.target_rule == "after_entry_def":
            entry = problem.get("entry_point") or ""
            lines = code.split("\n")
            for i, line in enumerate(lines):
                if entry and re.match(rf"\s*(?:async\s+)?def\s+{re.escape(entry)}\s*\(", line):
                    return "\n" + "\n".join(lines[i + 1 :])
        try:
            h = head(code)
        except ValueError:
            return code
        return code[len(h) :]

    def ppl_pair(self, tok, code: str, problem: dict, description: str, source_description: str | None = None):
        """(prompt, target) of the authors' perplexity: the prompt ends with the closing quotes of the
        docstring (``description``'s), the target is the code after the code's own docstring."""
        own = self.code_prompt(tok, source_description if source_description is not None else description, problem)
        if code.startswith(own):
            rest = code[len(own) - 1 :]
        else:
            m = re.search(r'def\s+\w+\s*\([^)]*\)\s*(?:->[^:]*)?:\s*"""[\s\S]*?"""', code)
            rest = code[m.end() :] if m else self.target(code, problem)
        return self.code_prompt(tok, description, problem)[:-1], rest

    # code -> description
    def describe_code(self, code: str) -> str:
        return _normalise(strip_docstring_blocks(code))

    def describe_prompt(self, tok, code: str, example: tuple[str, str]) -> str:
        ex_code, ex_desc = example
        return (
            f"###Code:\n{_normalise(ex_code)}\n###Description of the given code:\n{ex_desc}\n\n"
            f"###Code:\n{self.describe_code(code)}\n###Description of the given code:\n"
        )

    description_stops = DESCRIPTION_STOPS

    def clean_description(self, text: str) -> str:
        """The completion up to the first ``\\n###`` (as the authors keep it), at most ``max_chars``."""
        text = truncate(text, DESCRIPTION_STOPS)
        return text[: self.max_chars] if self.max_chars else text

    def rewrite_prompt(self, tok, description: str, example: tuple[str, str] = REWRITE_EXAMPLE) -> str:
        ex_src, ex_new = example
        return (
            f"###Description:\n{ex_src.strip()}\n###Rewritten description:\n{ex_new.strip()}\n\n"
            f"###Description:\n{description.strip()}\n###Rewritten description:\n"
        )


def make_layout(name: str, **options):
    if name == "chat":
        return ChatLayout(**options)
    if name == "authors":
        return AuthorsLayout(**options)
    raise ValueError(f"prompt.layout: {name!r} ({' | '.join(LAYOUTS)})")


def layout(cfg: dict, sampler: bool = False):
    """The layout of the config (``prompt.layout``; with ``sampler=True`` the sampler model's own
    ``model.sampler.layout`` when it has one), with its options from the config."""
    name = (cfg.get("prompt") or {}).get("layout", "chat")
    if sampler:
        name = ((cfg.get("model") or {}).get("sampler") or {}).get("layout") or name
    desc = (cfg.get("gibbs") or {}).get("description") or {}
    max_chars = desc.get("max_chars", 600 if name == "chat" else None)
    return make_layout(name, target=(cfg.get("train") or {}).get("target", "after_first_def"), max_chars=max_chars)
