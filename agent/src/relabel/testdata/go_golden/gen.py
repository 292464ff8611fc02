# Regenerates ../go_regexp_golden.jsonl: python3 gen.py && go run main.go > ../go_regexp_golden.jsonl
# (writes in.jsonl and meta.json here; any Go >= 1.19 works, patterns avoid (?<name>...) which needs Go 1.22).
import json
patterns = [
 "", "a", "abc", "a|b", "a*", "a+?", "(a)(b)?", ".*", ".+", "(.*)", "(.+)", "a.c", "(?i)abc", "(?i:a)b", "(?-s).*", "(?m)^a$", "(?U)a+", "(?s).", "a{2}", "a{2,}", "a{,2}", "a{2,3}?", "a{01}", "a{1001}", "a{1000}", "x{2}{3}", "a**", "a*?", "a??", "a+*", "a{2}*",
 r"\d+", r"\D", r"\w+", r"\W", r"\s", r"\S", r"\b", r"\B", r"a\bb", r"x\bé", r"\Aa\z", r"\Q.*\E", r"\Qa", r"\Q\E*", r"\101", r"\0", r"\08", r"\1", r"\12", r"\x41", r"\x{263a}", r"\x{110000}", r"\xZZ", r"\x4", r"\.", r"\-", r"\#", r"\e", r"\C", r"\pL", r"\p{Greek}+", r"\P{Greek}", r"\p{^Greek}", r"\pN", r"\p{Lu}", r"\p{Foo}", r"\p{greek}", r"\p{Any}", r"\z", r"\Z", r"\v", r"\a\f\t\n\r",
 "[abc]", "[^abc]", "[a-z]+", "[z-a]", "[]a]", "[^]a]", "[a-]", "[-a]", "[a-c-e]+", "[[]", "[[:alpha:]]+", "[[:^alpha:]]", "[[:foo:]]", r"[\d\s]", r"[^\D]", r"[\W]", "[a&&b]+", "[a~~b]", "[a--b]+", r"[\pL]", r"[\p{Greek}a]+", "[a", "[]", "[^]", r"[\]]", r"[\\]", r"[\n]", r"[\x41-\x43]+", r"[\b]", "[[:word:]]+", "[[:space:]]", "[a-\\d]", "[\\Q]\\E]",
 "(?P<name>a)(b)", "(?P<1x>a)(b)", "(?P<a>x)(?P<a>y)", "(?P<>a)", "(?P<a-b>a)", "(?P=a)", "(?:a)", "(?)", "a(?)b", "(?i-s:a.)", "(?-)", "(?i-)", "(?x)a", "(?u)a", "(", ")", "a)|(b", "(a))", "((a)", "(?P<n>a)|(?P<m>b)",
 "a{", "{", "}", "a{,}", "a{1,2", "^*", "$*", "(*)", "|", "a||b", "a|*", " ", "#", "&", "~", "a{2", "{2}",
 "é", "(?i)é", "(?i)k", "(?i)ſ", ".", r"\w\b", "(a*)*", "(a|ab)(c|bcd)(d*)", "(a+)(b+)?", ".*(?P<last>.)",
]
inputs = ["", "a", "ab", "abc", "aa", "aaa", "b", "A", "ABC", "a.c", "a\nc", "\n", "1", "12", "\u0663", "\u00e9", "\u00c9", "\u03b1\u03b2\u03b3", "_", "-", " ", "\t", "\u000b", "x", "]", "[", "&", "~", "{", "}", "a{", "a{,2}", "a{01}", "K", "k", "\u212a", "x\u00e9", "ab\n", "x{2}{3}", ".*", "A", "\x07\x0c\t\n\r", "#", "abcd", "aabb", "s", "\u017f", "\u263a", "aaaaaa", "*", "a-b"]
template = "<$0|$1|${1}x|$1x|${2}|$name|$n|$last|$$|$>"
with open("in.jsonl","w") as f:
    for p in patterns:
        f.write(json.dumps({"p": p}) + "\n")
json.dump({"inputs": inputs, "template": template, "cases": ["Straße", "İstanbul", "ΟΔΟΣ", "ﬁ", "ᾳ", "ᾈ", "ǅ", "ŉ", "Ǆǅǆ", "ΐ", "K\u212ak", "ABCxyz-09", "ǰ", "ß", "Ω", "\u1e9e"]}, open("meta.json","w"))
