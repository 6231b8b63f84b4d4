import ast

import pytest

from gift import prompts as P
from gift.datasets import load_split

PROBLEM = {
    "task_id": "mbpp/x",
    "description": "Write a function to add two numbers.",
    "example": "assert add(1, 2) == 3",
    "header": "import math\ndef add(a, b):\n",
    "reference": "import math\ndef add(a, b):\n    return a + b\n",
    "entry_point": "add",
}
CHAT, AUTHORS = P.ChatLayout(), P.AuthorsLayout()


class Tok:
    """The chat template of SmolLM2 is exercised in test_model; here a transparent stand-in shows the messages."""

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert tokenize is False and add_generation_prompt is True
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages) + "<assistant>"


def test_chat_code_prompt_holds_description_and_example():
    p = CHAT.code_prompt(Tok(), "Add two integers, please.", PROBLEM)
    assert "Add two integers, please." in p
    assert "assert add(1, 2) == 3" in p
    assert "Write a function to add two numbers." not in p  # the chain's description replaces the seed wording
    assert p.endswith("<assistant>")


def test_authors_prompt_is_a_docstring_inside_the_function():
    p = AUTHORS.code_prompt(None, "Add two integers.", PROBLEM)
    assert p == 'import math\ndef add(a, b):\n    """ Add two integers.\n    >>> add(1, 2)\n    3\n    """\n'
    # no example (APPS+, CodeInsight): the description on the docstring's one line
    q = AUTHORS.code_prompt(None, "Add two integers.", dict(PROBLEM, example="", task_id="appsplus/test/1"))
    assert q == 'import math\ndef add(a, b):\n    """ Add two integers."""\n'
    # the program is the prompt plus the completion cut at the first top-level statement
    code = AUTHORS.extract("    return a + b\n\nprint(add(1, 2))\n", PROBLEM, p)
    assert code == p + "    return a + b\n"
    assert P.strip_docstring_blocks(code) == "import math\ndef add(a, b):\n    return a + b\n"


def test_authors_training_target_keeps_helpers_after_the_first_def():
    code = "import math\ndef helper(x):\n    return x * 2\ndef add(a, b):\n    return helper(a) + b\n"
    problem = dict(PROBLEM, reference=code)
    assert AUTHORS.target(code, problem) == "\n    return x * 2\ndef add(a, b):\n    return helper(a) + b\n"
    entry_only = P.AuthorsLayout(target="after_entry_def")
    assert entry_only.target(code, problem) == "\n    return helper(a) + b\n"


def test_chat_target_is_a_fenced_block_that_extracts_back():
    target = CHAT.target(PROBLEM["reference"], PROBLEM)
    assert target.startswith("```python\n") and target.endswith("\n```")
    assert CHAT.extract(target, PROBLEM) == PROBLEM["reference"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Sure! Here it is:\n```python\ndef f(x):\n    return x\n```\nThis returns x.", "def f(x):\n    return x\n"),
        # the python block wins over an earlier plain block holding prose
        ("```\nUsage: call f\n```\n```python\ndef f():\n    pass\n```", "def f():\n    pass\n"),
        # an unterminated block at the end of a truncated answer still counts
        ("Here:\n```python\ndef g(a):\n    return a * 2\n", "def g(a):\n    return a * 2\n"),
        # no fences: from the first def on
        ("The function is\ndef h():\n    return 1\n", "def h():\n    return 1\n"),
        ("I cannot help with that.", ""),
    ],
)
def test_extract_code_from_chat_answers(text, expected):
    assert CHAT.extract(text, PROBLEM) == expected


def test_authors_extraction_by_dataset_and_stage():
    out = "    return a + b\n\n\nassert add(1, 2) == 3\ndef other():\n    pass"
    # the chain cuts at the assert; evaluation keeps it (the authors' MBPP evaluation has no "\nassert" stop)
    assert AUTHORS.extract(out, PROBLEM, "P", "chain") == "P    return a + b\n\n"
    assert AUTHORS.extract(out, PROBLEM, "P", "eval") == "P    return a + b\n\n\nassert add(1, 2) == 3"
    # MBPP keeps functions up to the entry function when the completion defines it
    helper_first = dict(PROBLEM, reference="def helper(x):\n    return x\ndef add(a, b):\n    return a + b\n")
    comp = "    return x\ndef add(a, b):\n    return helper(a) + b\ndef unused():\n    pass\n"
    assert (
        AUTHORS.extract(comp, helper_first, "P", "eval") == "P    return x\n\ndef add(a, b):\n    return helper(a) + b"
    )
    # APPS+ / CodeInsight: every "\ndef" and "\nassert" ends the program
    other = dict(PROBLEM, task_id="appsplus/test/1")
    assert AUTHORS.extract(comp, other, "P", "eval") == "P    return x"
    assert AUTHORS.stops(other, "eval") == ["\nclass", "\nif", "\n#", "\nprint", "\ndef", "\nassert"]
    assert AUTHORS.stops(PROBLEM, "eval") == ["\nclass", "\nif", "\n#", "\nprint"]


def test_description_prompts_follow_the_authors_template():
    code = 'import math\ndef f(x):\n    """ Secret description.\n    >>> f(1)\n    2\n    """\n    return x + 1\n'
    p = AUTHORS.describe_prompt(None, code, ("def g():\n    return 0\n", "Return zero."))
    assert p == (
        "###Code:\ndef g():\n    return 0\n\n###Description of the given code:\nReturn zero.\n\n"
        "###Code:\nimport math\ndef f(x):\n    return x + 1\n\n###Description of the given code:\n"
    )
    chat = CHAT.describe_prompt(Tok(), code, ("def g():\n    return 0\n", "Return zero."))
    assert "<assistant>Return zero.</assistant>" in chat and "Secret description" not in chat


def test_clean_description():
    assert (
        CHAT.clean_description("Compute the sum.\n\n\nOf two numbers.\n###Code:\nfoo")
        == "Compute the sum.\nOf two numbers."
    )
    assert CHAT.clean_description("Adds numbers.\n```python\ndef f(): pass\n```") == "Adds numbers."
    assert P.ChatLayout(max_chars=5).clean_description("Compute the sum.") == "Compu"
    # the authors keep the summary as generated, up to the first "\n###"
    assert AUTHORS.clean_description("\nThe code adds.\n\nMore.\n###Code:\nx") == "\nThe code adds.\n\nMore."


def test_strip_docstrings_keeps_code_valid():
    code = 'def f():\n    """doc"""\n\nclass A:\n    "doc"\n'
    out = P.strip_docstrings(code)
    ast.parse(out)
    assert "doc" not in out


def test_layout_from_config():
    assert P.layout({}).name == "chat" and P.layout({}).max_chars == 600
    lay = P.layout({"prompt": {"layout": "authors"}, "train": {"target": "after_entry_def"}})
    assert lay.name == "authors" and lay.target_rule == "after_entry_def" and lay.max_chars is None
    sampler = {"prompt": {"layout": "authors"}, "model": {"sampler": {"base": "x", "layout": "chat"}}}
    assert P.layout(sampler, sampler=True).name == "chat" and P.layout(sampler).name == "authors"
    with pytest.raises(ValueError, match="prompt.layout"):
        P.make_layout("completion")


def test_mbpp_problem_prompt_fields():
    p = load_split("mbpp", "data/mbpp/mbpp.jsonl", "train", ids=[602])[0]
    assert p["entry_point"] == "first_repeated_char"
    assert p["example"].startswith("assert first_repeated_char(")
    assert p["header"].startswith("def first_repeated_char(")
    assert AUTHORS.code_prompt(None, p["description"], p).startswith('def first_repeated_char(str1):\n    """ ')
