// Go's fmt package for template values: %v printing, Sprint/Sprintln and Sprintf verbs.
#pragma once

#include <string>
#include <vector>

#include "value.h"

namespace capstan::manifest::tmpl {

// strconv.FormatFloat(v, verb, prec, 64) for verbs e, E, f, g, G; prec -1 is "shortest".
std::string format_float(double v, char verb, int prec);

// fmt.Sprint(v): what {{.}} prints for a valid value ("<nil>" for a nil one).
std::string sprint_value(const Value& v);
std::string go_sprint(const std::vector<Value>& args);
std::string go_sprintln(const std::vector<Value>& args);
std::string go_sprintf(const std::string& format, const std::vector<Value>& args);

} // namespace capstan::manifest::tmpl
