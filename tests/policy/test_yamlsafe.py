"""The bounded YAML reader: alias bombs, depth, encodings, one bad document of many."""

import subprocess
import sys
import textwrap

import pytest

from gatetrace.policy import loading, yamlsafe


def bomb(levels: int = 9) -> str:
    """The classic 'billion laughs': each level refers nine times to the one before."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    lines.append(f"kind: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_naming_the_line() -> None:
    [document] = yamlsafe.load_documents(bomb())
    assert document.value is None
    assert document.error is not None
    assert "alias" in document.error and "100000 nodes" in document.error


def test_alias_bomb_is_refused_in_bounded_memory() -> None:
    """Checked in a fresh interpreter: the peak traced allocation stays small (was > 2.8 GB)."""
    script = textwrap.dedent(
        f"""
        import tracemalloc
        from gatetrace.policy import loading
        tracemalloc.start()
        [doc] = loading.load_text({bomb()!r}, "bomb.yaml")
        assert doc.policy is None and "alias" in doc.problems[0].msg, doc
        print(tracemalloc.get_traced_memory()[1])
        """
    )
    peak = int(subprocess.check_output([sys.executable, "-c", script], text=True))
    assert peak < 20 * 2**20


def test_shared_aliases_within_bound_are_fine() -> None:
    [document] = yamlsafe.load_documents("a: &x {k: v}\nb: *x\nc: [*x, *x]\n")
    assert document.value == {"a": {"k": "v"}, "b": {"k": "v"}, "c": [{"k": "v"}, {"k": "v"}]}


def test_recursive_alias_is_refused() -> None:
    [document] = yamlsafe.load_documents("a: &x [1, *x]\n")
    assert document.error is not None and "refers to itself" in document.error


@pytest.mark.parametrize("style", ["flow", "block"])
def test_deep_nesting_is_an_error_not_a_recursion_error(style: str) -> None:
    if style == "flow":
        text = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    else:
        text = "".join(" " * i + f"k{i}:\n" for i in range(5000)) + " " * 5000 + "v\n"
    [document] = yamlsafe.load_documents(text)
    assert document.error is not None and "nested deeper than 64" in document.error


def test_nesting_at_the_bound_is_accepted() -> None:
    [document] = yamlsafe.load_documents("[" * 63 + "]" * 63)
    assert document.error is None


@pytest.mark.parametrize(
    ("data", "byte"),
    [(b"kind: Tr\xe9cingPolicy\n", "0xe9 at offset 8"), (b"\x7fELF\x02\x01\x01\x00\xff", "0xff")],
)
def test_text_that_is_not_utf8_is_named(data: bytes, byte: str) -> None:
    [document] = yamlsafe.load_documents(data)
    assert document.error is not None and "not UTF-8" in document.error and byte in document.error


def test_binary_that_decodes_is_a_syntax_error() -> None:
    [document] = yamlsafe.load_documents(b"\x00\x01\x02kind: x\n")
    assert document.error is not None and document.error.startswith("YAML syntax error")


POLICY = "kind: TracingPolicy\napiVersion: gatetrace.dev/v1alpha1\nmetadata: {name: %s}\nspec: {}\n"


def test_a_syntax_error_in_document_2_of_3_leaves_1_and_3_validated() -> None:
    text = POLICY % "one" + "---\nkind: [\n---\n" + POLICY % "three"
    loaded = loading.load_text(text, "p.yaml")
    assert [d.where for d in loaded] == ["p.yaml#1", "p.yaml#2", "p.yaml#3"]
    assert loaded[0].policy is not None and loaded[2].policy is not None
    assert loaded[1].policy is None
    [problem] = loaded[1].problems
    # the line is counted in the whole file: document 2 starts on line 6
    assert problem.msg.startswith("YAML syntax error at line 7")


def test_empty_documents_and_comments_do_not_count() -> None:
    text = "# head\n---\n---\n" + POLICY % "one" + "...\n# tail\n---\n" + POLICY % "two"
    documents = yamlsafe.load_documents(text)
    assert [d.index for d in documents] == [0, 1]
    assert [d.value["metadata"]["name"] for d in documents] == ["one", "two"]


def test_document_marker_with_content_and_directives() -> None:
    documents = yamlsafe.load_documents("%YAML 1.1\n--- {a: 1}\n--- |\n  text\n")
    assert [d.value for d in documents] == [{"a": 1}, "text\n"]


def test_load_one_refuses_several_documents() -> None:
    with pytest.raises(yamlsafe.YamlError, match="one YAML document, found 2"):
        yamlsafe.load_one("a: 1\n---\nb: 2\n")


def test_messages_never_repeat_a_huge_value() -> None:
    text = POLICY % "big" + "  tags: {a: " + "x" * 10_000_000 + "}\n"
    sampler = "spec:\n  sampling: {sampler: {type: " + "y" * 100_000 + "}}\n"
    text = text.replace("spec: {}\n", sampler)
    [loaded] = loading.load_text(text, "big.yaml")
    assert loaded.policy is None
    assert all(len(p.msg) < 400 for p in loaded.problems), [len(p.msg) for p in loaded.problems]
