"""box build's pure parts: .dockerignore matching (Docker's rules, with hypothesis),
variable substitution, and the Dockerfile checks that name file, line and instruction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.build.ignore import Matcher
from runtime.build.instructions import BuildSyntaxError, parse
from runtime.build.words import SubstitutionError, display_text, process_word, process_words

NAME = st.text(alphabet="abcxyz01_-.", min_size=1, max_size=6).filter(
    lambda s: s not in (".", ".."))
PATH = st.lists(NAME, min_size=1, max_size=4).map("/".join)


@pytest.mark.parametrize("patterns, path, excluded", [
    ("*.log", "a.log", True),
    ("*.log", "dir/a.log", False),           # anchored at the root
    ("**/*.log", "dir/sub/a.log", True),
    ("**/*.log", "a.log", True),
    ("dir", "dir/sub/file", True),           # a directory takes its contents along
    ("dir/*", "dir", False),
    ("/dir/x", "dir/x", True),               # a leading / is the root as well
    ("*\n!keep.txt", "keep.txt", False),
    ("*\n!keep.txt", "other.txt", True),
    ("!keep.txt\n*", "keep.txt", True),       # the last match wins
    ("a?c", "abc", True),
    ("a?c", "a/c", False),
    ("[ab]x", "bx", True),
    ("# comment\n\n  spaced  ", "spaced", True),
    ("dir/**/z", "dir/z", True),
    ("dir/**/z", "dir/a/b/z", True),
    ("./dir/../x", "x", True),
])
def test_docker_matching(patterns: str, path: str, excluded: bool) -> None:
    assert Matcher.from_text(patterns).excluded(path) is excluded


@given(PATH, PATH)
def test_a_path_pattern_excludes_the_path_and_everything_below(path: str, below: str) -> None:
    m = Matcher.from_text(path)
    assert m.excluded(path)
    assert m.excluded(f"{path}/{below}")


@given(PATH)
def test_an_exception_after_the_pattern_reincludes(path: str) -> None:
    assert not Matcher.from_text(f"{path}\n!{path}").excluded(path)
    assert Matcher.from_text(f"!{path}\n{path}").excluded(path)


@given(st.lists(NAME, min_size=1, max_size=4), NAME)
def test_double_star_matches_at_any_depth(dirs: list[str], name: str) -> None:
    assert Matcher.from_text(f"**/{name}").excluded("/".join([*dirs, name]))


@given(st.lists(NAME, min_size=2, max_size=4))
def test_a_single_star_never_crosses_a_slash(parts: list[str]) -> None:
    path = "/".join(parts)
    star = Matcher.from_text("*")
    assert star.patterns[0].regex.match(path) is None  # not the path itself...
    assert star.excluded(path)  # ...but its first directory, which takes the rest along
    assert Matcher.from_text("**").patterns[0].regex.match(path)


@pytest.mark.parametrize("word, expected", [
    ("$A", "1"), ("${A}", "1"), ("${UNSET:-dflt}", "dflt"), ("${EMPTY:-dflt}", "dflt"),
    ("${EMPTY-dflt}", ""), ("${A:+alt}", "alt"), ("${UNSET:+alt}", ""), ("${UNSET+x}", ""),
    ("'$A'", "$A"), ('"$A b"', "1 b"), ("\\$A", "$A"), ("a$", "a$"), ("${P#*/}", "b/c"),
    ("${P##*/}", "c"), ("${P%/*}", "a/b"), ("${P%%/*}", "a"), ("x${A}y", "x1y"),
    ("${UNSET:-${A}}", "1"),
])
def test_substitution(word: str, expected: str) -> None:
    env = {"A": "1", "EMPTY": "", "P": "a/b/c"}
    assert process_word(word, env) == expected


@pytest.mark.parametrize(("text", "shown"), [
    ('RUN echo $A "$B" \'$A\' ${A}x', 'RUN echo 1 "two words" \'$A\' 1x'),
    ("RUN echo $UNSET ${UNSET} ${UNSET:-dflt} ${A:+set}", "RUN echo $UNSET ${UNSET} dflt set"),
    ("COPY $A/\\$B /x", "COPY 1/\\$B /x"),
    ('RUN echo "open ${A', 'RUN echo "open ${A'),  # does not parse: shown as written
])
def test_plain_progress_names_keep_quotes_and_unset_variables(text: str, shown: str) -> None:
    # BuildKit's processCmdEnv with SkipProcessQuotes and SkipUnsetEnv
    assert display_text(text, {"A": "1", "B": "two words"}) == shown


@given(st.text(st.characters(blacklist_characters="$"), max_size=40))
def test_plain_progress_names_without_variables_are_the_text(text: str) -> None:
    assert display_text(text, {"A": "1"}) == text


def test_substitution_errors_and_escape_char() -> None:
    with pytest.raises(SubstitutionError, match="X: must be set"):
        process_word("${X:?must be set}", {})
    assert process_word("`$A", {"A": "1"}, escape="`") == "$A"
    assert process_words('80 "90 91" $P', {"P": "443/udp"}) == ["80", "90 91", "443/udp"]


@pytest.mark.parametrize("source, where", [
    ("FROM busybox\nFROB x\n", "Dockerfile:2: FROB x: unknown instruction: FROB"),
    ("FROM busybox\nRUN --bogus=1 true\n", "Dockerfile:2: RUN --bogus=1 true: unknown flag: "
                                           "--bogus"),
    ("FROM busybox\nCOPY a\n", "Dockerfile:2: COPY a: COPY requires at least two"),
    ("RUN true\n", "Dockerfile:1: RUN true: no build stage"),
    ("FROM busybox\nSHELL sh -c\n", "Dockerfile:2: SHELL sh -c: SHELL requires the arguments "
                                    "to be in JSON form"),
    ("FROM busybox\n\nRUN <<EOF\necho\n", "Dockerfile:3: RUN <<EOF: unterminated heredoc"),
    ("FROM a b\n", "Dockerfile:1: FROM a b: FROM requires either one or three"),
])
def test_syntax_errors_name_file_line_and_instruction(source: str, where: str) -> None:
    with pytest.raises(BuildSyntaxError) as info:
        parse(source, "Dockerfile")
    assert str(info.value).startswith(where), str(info.value)


def test_parser_keeps_continuations_escape_and_stages() -> None:
    df = parse("# escape=`\nARG V=1\nFROM busybox AS Base\nRUN echo a `\n  b\n"
               "FROM base\nCOPY --from=base --chown=1:2 /x /y\n")
    assert df.escape == "`"
    assert [a.args for a in df.global_args] == [["V=1"]]
    assert [s.name for s in df.stages] == ["base", ""]
    assert df.stages[0].steps[0].args == ["echo a   b"]
    assert df.stages[1].steps[0].flags == {"from": ["base"], "chown": ["1:2"]}
