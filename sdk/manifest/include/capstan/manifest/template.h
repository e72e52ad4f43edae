// Go text/template (with the Sprig functions manifests use), as Harness renders manifests.
#pragma once

#include <nlohmann/json.hpp>

#include "capstan/manifest/error.h"

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace capstan::manifest {

// A template that does not parse or fails while executing. what() reads like Go's message
// without its "template: " prefix, e.g.
//   deployment.yaml:12:18: executing "deployment.yaml" at <.Values.image.tag>: nil pointer
//   evaluating interface {}.tag
// Lines count from 1; columns are byte offsets within the line counted from 0, as Go reports them.
class TemplateError : public ManifestError {
public:
  using ManifestError::ManifestError;
};

struct RenderOptions {
  // Go's option missingkey=error: a missing map key fails the render instead of yielding
  // "<no value>" (Harness's behaviour, and the default).
  bool missing_key_error = false;
  // Guards against runaway templates: nested {{template}}/include calls, evaluation steps, and
  // output. (Bodies nest at most 100 deep when parsed and 1000 deep when run, whatever these say.)
  int max_depth = 100;
  std::size_t max_steps = 50'000'000;
  std::size_t max_output_bytes = 64u << 20;
};

namespace tmpl {
struct Tree; // parsed form, private to the implementation
}

// A set of named templates sharing their {{define}}s, like Go's *template.Template: each parsed
// text becomes a template named after its file, and every {{define}} in any text is callable
// from all of them with {{template}} and include.
class TemplateSet {
public:
  TemplateSet();
  ~TemplateSet();
  TemplateSet(TemplateSet&&) noexcept;
  TemplateSet& operator=(TemplateSet&&) noexcept;

  // Parses `text` as the template `name` (errors name it as the file). A {{define}} replaces an
  // earlier one of the same name from another text; two in the same text are an error.
  void parse(const std::string& name, std::string_view text);
  bool contains(const std::string& name) const;

  // Runs template `name` with `data` as dot (and $). Each missing value printed as
  // "<no value>" adds a warning naming where, so callers can surface it.
  std::string execute(const std::string& name, const nlohmann::json& data,
                      const RenderOptions& options = {},
                      std::vector<std::string>* warnings = nullptr) const;

private:
  std::map<std::string, std::shared_ptr<const tmpl::Tree>> trees_;
};

// Parses and runs one text; `name` is used in error messages.
std::string render_template(std::string_view text, const nlohmann::json& data,
                            const std::string& name = "template", const RenderOptions& options = {},
                            std::vector<std::string>* warnings = nullptr);

} // namespace capstan::manifest
