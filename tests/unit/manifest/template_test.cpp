// The Go template dialect: a table of renders and a table of failures with their positions.
#include <gtest/gtest.h>

#include "capstan/manifest/template.h"

namespace {

using capstan::manifest::render_template;
using capstan::manifest::RenderOptions;
using capstan::manifest::TemplateError;
using nlohmann::json;

struct RenderCase {
  const char* name;
  const char* text;
  const char* values; // JSON for .Values
  const char* want;
};

const RenderCase kRenders[] = {
    {"field", "{{ .Values.name }}", R"({"name":"app"})", "app"},
    {"missing key prints no value", "a{{ .Values.missing }}b", "{}", "a<no value>b"},
    {"missing parent prints no value", "{{ .Values.a.b }}", "{}", "<no value>"},
    {"null prints no value", "{{ .Values.n }}", R"({"n":null})", "<no value>"},
    {"trim markers", "a  {{- 1 -}}  b", "{}", "a1b"},
    {"negative number is not a trim", "{{-3}}", "{}", "-3"},
    {"comments vanish", "a {{- /* note */}} b{{/* x */}}", "{}", "a b"},
    {"trim across lines", "{{ if true -}}\n  x\n{{- end }}", "{}", "x"},
    {"else if chain",
     "{{ if eq .Values.n 1 }}one{{ else if eq .Values.n 2 }}two{{ else }}many{{ end }}",
     R"({"n":2})", "two"},
    {"with sets dot", "{{ with .Values.m }}{{ .k }}{{ else }}none{{ end }}", R"({"m":{"k":"v"}})",
     "v"},
    {"with else", "{{ with .Values.m }}{{ .k }}{{ else }}none{{ end }}", "{}", "none"},
    {"else with", "{{ with .Values.a }}A{{ else with .Values.b }}B{{ . }}{{ end }}", R"({"b":"x"})",
     "Bx"},
    {"range index and value", "{{ range $i, $v := .Values.l }}{{ $i }}={{ $v }},{{ end }}",
     R"({"l":["a","b"]})", "0=a,1=b,"},
    {"range map in key order", "{{ range $k, $v := .Values.m }}{{ $k }}={{ $v }};{{ end }}",
     R"({"m":{"b":2,"a":1}})", "a=1;b=2;"},
    {"range one variable is the element", "{{ range $v := .Values.l }}{{ $v }}{{ end }}",
     R"({"l":["a","b"]})", "ab"},
    {"range else", "{{ range .Values.l }}x{{ else }}empty{{ end }}", R"({"l":[]})", "empty"},
    {"range over missing runs else", "{{ range .Values.nope }}x{{ else }}none{{ end }}", "{}",
     "none"},
    {"dollar is the root in range", "{{ range .Values.l }}{{ $.Values.p }}{{ . }}{{ end }}",
     R"({"l":["a","b"],"p":"-"})", "-a-b"},
    {"range over an int", "{{ range 3 }}{{ . }}{{ end }}", "{}", "012"},
    {"break and continue",
     "{{ range .Values.l }}{{ if eq . 3 }}{{ break }}{{ end }}{{ if eq . 1 }}{{ continue }}{{ end "
     "}}{{ . }}{{ end }}",
     R"({"l":[1,2,3,4]})", "2"},
    {"variable assignment reaches outer scope",
     "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", "{}", "2"},
    {"define and template", R"({{ define "t" }}[{{ . }}]{{ end }}{{ template "t" "x" }})", "{}",
     "[x]"},
    {"include and nindent", R"({{ define "l" }}a: 1{{ end }}x:{{ include "l" . | nindent 2 }})",
     "{}", "x:\n  a: 1"},
    {"block has a default", R"({{ block "b" . }}default{{ end }})", "{}", "default"},
    {"default on missing, empty, zero and false",
     R"({{ .Values.a | default "d" }}{{ .Values.e | default "d" }}{{ .Values.z | default "d" }}{{ .Values.f | default "d" }}{{ .Values.s | default "d" }})",
     R"({"e":"","z":0,"f":false,"s":"set"})", "ddddset"},
    {"quote and squote", R"({{ quote .Values.s 1 }} {{ squote "a" }} [{{ quote .Values.nope }}])",
     R"({"s":"a\"b"})", R"("a\"b" "1" 'a' [])"},
    {"indent and nindent", R"({{ "a\nb" | indent 2 }}|{{ "a\nb" | nindent 2 }})", "{}",
     "  a\n  b|\n  a\n  b"},
    {"toYaml keeps Harness's trailing newline", "{{ toYaml .Values.m }}",
     R"({"m":{"b":[1,2],"a":"x"}})", "a: x\nb:\n- 1\n- 2\n"},
    {"toJson escapes html and sorts keys", "{{ toJson .Values.m }}",
     R"({"m":{"b":"<x>","a":1.5,"c":2.0}})", R"({"a":1.5,"b":"\u003cx\u003e","c":2})"},
    {"numeric conversions",
     R"({{ int "42" }} {{ int 3.9 }} {{ int64 "0x10" }} {{ float64 "1.5" }} {{ int "abc" }} {{ int .Values.r }})",
     R"({"r":"7"})", "42 3 16 1.5 0 7"},
    {"printf verbs",
     R"({{ printf "%s-%d-%v-%q-%5.2f|%-4s|%03d|%x|%t" "a" 7 true "q" 3.14159 "x" 5 255 false }})",
     "{}", R"(a-7-true-"q"- 3.14|x   |005|ff|false)"},
    {"printf mismatches", R"({{ printf "%d %s" "x" }}|{{ printf "%s" "a" "b" }})", "{}",
     "%!d(string=x) %!s(MISSING)|a%!(EXTRA string=b)"},
    {"print spacing follows fmt.Sprint", R"({{ print 1 2 "a" 3 }}|{{ println "a" 1 }})", "{}",
     "1 2a3|a 1\n"},
    {"string case and trim",
     R"({{ upper "ab" }}{{ lower "CD" }}{{ title "hello world" }}{{ trim "  x  " }})", "{}",
     "ABcdHello Worldx"},
    {"trimSuffix trimPrefix replace",
     R"({{ trimSuffix "-x" "a-x" }} {{ trimPrefix "v" "v1.2" }} {{ replace "." "-" "1.2.3" }})",
     "{}", "a 1.2 1-2-3"},
    {"contains and prefixes",
     R"({{ contains "b" "abc" }} {{ hasPrefix "a" "abc" }} {{ hasSuffix "x" "abc" }})", "{}",
     "true true false"},
    {"split splitList join",
     R"({{ $p := split "." "a.b.c" }}{{ $p._1 }} {{ splitList "," "x,y" | join "+" }} {{ join "," (list 1 "a" nil) }})",
     "{}", "b x+y 1,a"},
    {"list dict get hasKey len",
     R"({{ $d := dict "a" 1 "b" "two" }}{{ get $d "b" }} {{ hasKey $d "a" }} [{{ get $d "zz" }}] {{ len (list 1 2 3) }})",
     "{}", "two true [] 3"},
    {"empty coalesce ternary",
     R"({{ empty .Values.e }} {{ coalesce .Values.z "" "c" }} {{ ternary "y" "n" true }})",
     R"({"e":{}})", "true c y"},
    {"comparisons",
     "{{ eq 1 1 }} {{ ne \"a\" \"b\" }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt 3 2 }} {{ ge 1 2 }} {{ eq "
     "\"b\" \"a\" \"b\" }}",
     "{}", "true true true true true false true"},
    {"ints and floats compare by value", "{{ eq .Values.n 2.0 }} {{ lt .Values.n 2.5 }}",
     R"({"n":2})", "true true"},
    {"eq with a missing value is false", R"({{ eq .Values.missing "x" }})", "{}", "false"},
    {"and or not return operands",
     R"({{ and 1 "x" }} {{ and 0 "x" }} {{ or "" "y" }} {{ not .Values.m }})", "{}", "x 0 y true"},
    {"len and index", R"({{ len .Values.l }} {{ index .Values.l 1 }} {{ index .Values.m "k" }})",
     R"({"l":["a","b","c"],"m":{"k":"v"}})", "3 b v"},
    {"base64 and sha256", R"({{ b64enc "hello" }} {{ b64dec "aGVsbG8=" }} {{ sha256sum "abc" }})",
     "{}", "aGVsbG8= hello ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"toString", "{{ toString 5 }} {{ toString .Values.f }}", R"({"f":1.5})", "5 1.5"},
    {"semverCompare",
     R"({{ semverCompare ">=1.2.0" "1.3.4" }} {{ semverCompare "^1.2" "2.0.0" }} {{ semverCompare "~1.2.3" "1.2.9" }} {{ semverCompare ">1.0.0 <2.0.0 || 3.x" "3.1.0" }})",
     "{}", "true false true true"},
    {"YAML integers print as integers", "{{ .Values.big }} {{ .Values.port }}",
     R"({"big":1000000,"port":8080})", "1000000 8080"},
    {"floats print like Go", "{{ .Values.a }} {{ .Values.b }} {{ .Values.c }} {{ 1e6 }} {{ 2.50 }}",
     R"({"a":1e21,"b":0.00001,"c":123456.5})", "1e+21 1e-05 123456.5 1e+06 2.5"},
    {"maps and lists print like fmt", "{{ .Values.m }}", R"({"m":{"b":1,"a":[1,"x",null]}})",
     "map[a:[1 x <nil>] b:1]"},
    {"char constant", "{{ 'a' }}", "{}", "97"},
    {"chain on a pipeline", R"({{ (dict "a" (dict "b" "c")).a.b }})", "{}", "c"},
    {"parenthesized argument", R"({{ printf "%s" (upper "x") }})", "{}", "X"},
    {"required passes a value", R"({{ required "m" .Values.x }})", R"({"x":"v"})", "v"},
    {"raw string", "{{ `a\\n` }}", "{}", "a\\n"},
    {"arithmetic", "{{ add 1 2 3 }} {{ sub 5 2 }} {{ mul 2 3 }} {{ div 7 2 }} {{ mod 7 2 }}", "{}",
     "6 3 6 3 1"},
    {"pipeline into function", R"({{ .Values.name | upper | printf "%s!" }})", R"({"name":"app"})",
     "APP!"},
};

void PrintTo(const RenderCase& c, std::ostream* os) {
  *os << c.name;
}

class Renders : public ::testing::TestWithParam<RenderCase> {};

TEST_P(Renders, MatchGo) {
  const RenderCase& c = GetParam();
  json values = json::parse(c.values);
  std::string got;
  try {
    got = render_template(c.text, {{"Values", values}}, "t.yaml");
  } catch (const std::exception& e) {
    FAIL() << c.name << ": " << e.what();
  }
  EXPECT_EQ(got, c.want) << c.name;
}

INSTANTIATE_TEST_SUITE_P(Template, Renders, ::testing::ValuesIn(kRenders), [](const auto& info) {
  std::string n = info.param.name;
  for (auto& ch : n) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return n;
});

struct ErrorCase {
  const char* name;
  const char* text;
  const char* values;
  const char* want; // the whole what()
};

const ErrorCase kErrors[] = {
    {"nil pointer", "{{ .Values.image.tag }}", R"({"image":null})",
     R"(t.yaml:1:3: executing "t.yaml" at <.Values.image.tag>: nil pointer evaluating interface {}.tag)"},
    {"field of a string", "{{ .Values.s.x }}", R"({"s":"str"})",
     R"(t.yaml:1:3: executing "t.yaml" at <.Values.s.x>: can't evaluate field x in type interface {})"},
    {"unknown function", "x\n{{ foo 1 }}", "{}", R"(t.yaml:2:3: function "foo" not defined)"},
    {"unclosed action", "{{ .Values.a", "{}", "t.yaml:1:12: unclosed action"},
    {"missing end", "{{ if true }}x", "{}", "t.yaml:1:14: unexpected EOF"},
    {"stray end", "x{{ end }}", "{}", "t.yaml:1:8: unexpected {{end}}"},
    {"undefined variable", "{{ $x }}", "{}", R"(t.yaml:1:3: undefined variable "$x")"},
    {"if without value", "{{ if }}", "{}", "t.yaml:1:6: missing value for if"},
    {"bad character", "{{ .Values.a# }}", "{}", "t.yaml:1:10: bad character U+0023 '#'"},
    {"unterminated string", "{{ \"abc }}", "{}", "t.yaml:1:3: unterminated quoted string"},
    {"unclosed comment", "{{/* x }}", "{}", "t.yaml:1:2: unclosed comment"},
    {"single brace", "{{ .Values.x }", "{}", R"(t.yaml:1:13: unexpected "}" in operand)"},
    {"required", R"({{ required "image.tag is required" .Values.image.tag }})", R"({"image":{}})",
     R"(t.yaml:1:3: executing "t.yaml" at <required "image.tag ...>: error calling required: image.tag is required)"},
    {"fail", R"({{ fail "boom" }})", "{}",
     R"(t.yaml:1:3: executing "t.yaml" at <fail "boom">: error calling fail: boom)"},
    {"wrong argument type", "{{ upper .Values.n }}", R"({"n":5})",
     R"(t.yaml:1:9: executing "t.yaml" at <.Values.n>: wrong type for value; expected string; got int)"},
    {"literal of the wrong type", "{{ indent \"2\" \"x\" }}", "{}",
     R"(t.yaml:1:10: executing "t.yaml" at <"2">: expected integer; found "2")"},
    {"wrong number of arguments", "{{ upper }}", "{}",
     R"(t.yaml:1:3: executing "t.yaml" at <upper>: wrong number of args for upper: want 1 got 0)"},
    {"index out of range", "{{ index .Values.l 5 }}", R"({"l":[1]})",
     R"(t.yaml:1:3: executing "t.yaml" at <index .Values.l 5>: error calling index: index out of range: 5)"},
    {"template not defined", R"({{ template "x" }})", "{}",
     R"(t.yaml:1:12: executing "t.yaml" at <{{template "x"}}>: template "x" not defined)"},
    {"range over a string", "{{ range .Values.s }}{{ end }}", R"({"s":"str"})",
     R"(t.yaml:1:9: executing "t.yaml" at <.Values.s>: range can't iterate over str)"},
    {"two defines of one name", R"({{ define "a" }}x{{ end }}{{ define "a" }}y{{ end }})", "{}",
     R"(t.yaml:1:50: template: multiple definition of template "a")"},
    {"literal after a pipe", "{{ 1 | 2 }}", "{}",
     "t.yaml:1:9: non executable command in pipeline stage 2"},
    {"break outside range", "{{ break }}", "{}", "t.yaml:1:9: {{break}} outside {{range}}"},
    {"nil command", "{{ nil }}", "{}",
     R"(t.yaml:1:3: executing "t.yaml" at <nil>: nil is not a command)"},
    {"incomparable", R"({{ eq "a" 1 }})", "{}",
     R"(t.yaml:1:3: executing "t.yaml" at <eq "a" 1>: error calling eq: incompatible types for comparison)"},
    {"arguments to a field", R"({{ .Values.x "a" }})", "{}",
     R"(t.yaml:1:3: executing "t.yaml" at <.Values.x>: x is not a method but has arguments)"},
    {"runaway recursion", R"({{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }})",
     "{}",
     R"(t.yaml:1:28: executing "r" at <{{template "r" .}}>: exceeded maximum template depth (100))"},
};

void PrintTo(const ErrorCase& c, std::ostream* os) {
  *os << c.name;
}

class Errors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(Errors, NameFileLineColumnAndAction) {
  const ErrorCase& c = GetParam();
  try {
    std::string out = render_template(c.text, {{"Values", json::parse(c.values)}}, "t.yaml");
    FAIL() << c.name << ": rendered \"" << out << "\" instead of failing";
  } catch (const TemplateError& e) {
    EXPECT_EQ(std::string(e.what()), c.want) << c.name;
    EXPECT_EQ(e.file(), "t.yaml");
  }
}

INSTANTIATE_TEST_SUITE_P(Template, Errors, ::testing::ValuesIn(kErrors), [](const auto& info) {
  std::string n = info.param.name;
  for (auto& ch : n) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return n;
});

TEST(Template, ErrorPositionDeepInAFile) {
  std::string text;
  for (int i = 1; i < 12; ++i) text += "line" + std::to_string(i) + ": x\n";
  text += "        image: {{ .Values.image.tag }}\n";
  try {
    render_template(text, {{"Values", {{"image", nullptr}}}}, "deployment.yaml");
    FAIL() << "rendered";
  } catch (const TemplateError& e) {
    EXPECT_STREQ(e.what(), "deployment.yaml:12:18: executing \"deployment.yaml\" at "
                           "<.Values.image.tag>: nil pointer evaluating interface {}.tag");
    EXPECT_EQ(e.line(), 12);
    EXPECT_EQ(e.column(), 18);
  }
}

TEST(Template, MissingKeyErrorOption) {
  RenderOptions strict;
  strict.missing_key_error = true;
  try {
    render_template("a: {{ .Values.nope }}", {{"Values", json::object()}}, "t.yaml", strict);
    FAIL() << "rendered";
  } catch (const TemplateError& e) {
    EXPECT_STREQ(e.what(), "t.yaml:1:6: executing \"t.yaml\" at <.Values.nope>: map has no "
                           "entry for key \"nope\"");
  }
}

TEST(Template, MissingValuesAreReportedAsWarnings) {
  std::vector<std::string> warnings;
  std::string out = render_template("a: {{ .Values.nope }}\nb: {{ .Values.yes }}\n",
                                    {{"Values", {{"yes", 1}}}}, "t.yaml", {}, &warnings);
  EXPECT_EQ(out, "a: <no value>\nb: 1\n");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0],
            "t.yaml:1:6: {{.Values.nope}} has no value; it rendered as \"<no value>\"");
}

TEST(Template, RunawayOutputIsStopped) {
  RenderOptions small;
  small.max_output_bytes = 1000;
  EXPECT_THROW(render_template("{{ range 100000 }}xxxxxxxx{{ end }}", json::object(), "t", small),
               TemplateError);
  RenderOptions few;
  few.max_steps = 1000;
  EXPECT_THROW(render_template("{{ range 100000 }}{{ end }}", json::object(), "t", few),
               TemplateError);
}

TEST(Template, HostileNestingIsAnErrorNotACrash) {
  std::string ifs;
  for (int i = 0; i < 5000; ++i) ifs += "{{ if true }}";
  try {
    render_template(ifs, json::object(), "t.yaml");
    FAIL() << "rendered";
  } catch (const TemplateError& e) {
    EXPECT_NE(std::string(e.what()).find("nesting deeper than 100 levels"), std::string::npos);
  }
  std::string parens = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  EXPECT_THROW(render_template(parens, json::object(), "t.yaml"), TemplateError);
  // Templates calling each other 100 deep, each nested 50 deep, stop at the run-time limit.
  std::string deep = R"({{ define "r" }})";
  for (int i = 0; i < 50; ++i) deep += "{{ if true }}";
  deep += R"({{ template "r" . }})";
  for (int i = 0; i < 50; ++i) deep += "{{ end }}";
  deep += R"({{ end }}{{ template "r" . }})";
  try {
    render_template(deep, json::object(), "t.yaml");
    FAIL() << "rendered";
  } catch (const TemplateError& e) {
    EXPECT_NE(std::string(e.what()).find("exceeded maximum nesting depth (1000)"),
              std::string::npos)
        << e.what();
  }
}

TEST(Template, DefinesAreSharedAcrossASet) {
  capstan::manifest::TemplateSet set;
  set.parse("_helpers.tpl", R"({{ define "app.name" }}{{ .Values.name }}-x{{ end }})");
  set.parse("deployment.yaml", R"(name: {{ include "app.name" . }})");
  EXPECT_EQ(set.execute("deployment.yaml", {{"Values", {{"name", "web"}}}}), "name: web-x");
  // A later file may redefine a template; the last definition wins.
  set.parse("override.tpl", R"({{ define "app.name" }}other{{ end }})");
  EXPECT_EQ(set.execute("deployment.yaml", {{"Values", {{"name", "web"}}}}), "name: other");
}

} // namespace
