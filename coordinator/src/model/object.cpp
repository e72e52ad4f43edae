// Recognising and validating applied documents.
#include "model/object.h"

#include <map>
#include <regex>
#include <sstream>

#include "capstan/expression/expression.h"
#include "capstan/yaml/yaml.h"
#include "model/pipeline.h"
#include "model/variables.h"

namespace capstan::model {

using nlohmann::json;

namespace {

// The text of each document of a stream, split at "---" lines (column 0, so never inside a
// block scalar). Returns nothing when the split does not match the parsed documents.
struct Chunk {
  std::string text;
  int first_line = 1; // of the chunk in the file
};

// The text of each document of a stream, split at "---" lines (column 0, so never inside a
// block scalar). Returns nothing when the split does not match the parsed documents.
std::vector<Chunk> split_documents(const std::string& text, std::size_t expected) {
  std::vector<Chunk> chunks(1);
  std::istringstream in(text);
  std::string line;
  bool first_content = true;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.rfind("---", 0) == 0 && (line.size() == 3 || line[3] == ' ' || line[3] == '\t')) {
      if (!first_content) chunks.emplace_back();
      chunks.back().text.clear();
      chunks.back().first_line = line_no + 1;
      first_content = false;
      continue;
    }
    if (line.rfind("...", 0) == 0 && line.find_first_not_of(". \t") == std::string::npos) continue;
    if (line.find_first_not_of(" \t") != std::string::npos && line[0] != '#') first_content = false;
    chunks.back().text += line + "\n";
  }
  if (chunks.size() != expected) return {};
  return chunks;
}

// Secrets that `<+secrets.getValue("id")>` expressions anywhere in a document read.
void secret_uses(const json& value, const std::string& pointer, const yaml::SourceMap& where,
                 std::vector<Reference>& out) {
  if (value.is_string()) {
    static const std::regex use(R"(secrets\.getValue\(\s*["']([^"']+)["']\s*\))");
    const auto& s = value.get_ref<const std::string&>();
    for (auto it = std::sregex_iterator(s.begin(), s.end(), use); it != std::sregex_iterator();
         ++it) {
      out.push_back({"secret", strip_scope((*it)[1].str()), where.locate(pointer), "",
                     "<+secrets.getValue()>"});
    }
  } else if (value.is_object()) {
    for (const auto& [k, v] : value.items()) {
      secret_uses(v, yaml::pointer_append(pointer, k), where, out);
    }
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      secret_uses(value[i], yaml::pointer_append(pointer, i), where, out);
    }
  }
}

// Fills an object from one document; false when the document has problems.
bool parse_document(const KindSpec& spec, const yaml::Document& doc, Object& obj,
                    std::vector<Problem>& problems) {
  auto before = problems.size();
  spec.parse(doc, obj, problems);
  if (problems.size() != before) return false;
  secret_uses(doc.value, "", doc.where, obj.references);
  return true;
}

} // namespace

const std::vector<KindSpec>& kinds() {
  static const std::vector<KindSpec> list = {
      {"connector", {"connectors"}, parse_connector},
      {"secret", {"secrets"}, parse_secret},
      {"userGroup", {"usergroups", "usergroup", "userGroups"}, parse_user_group},
      {"service", {"services", "svc"}, parse_service},
      {"environment", {"environments", "env", "envs"}, parse_environment},
      {"infrastructureDefinition",
       {"infrastructureDefinitions", "infrastructure", "infrastructures", "infra", "infras"},
       parse_infrastructure},
      {"gitopsCluster",
       {"gitopsclusters", "gitopscluster", "gitOpsClusters", "clusters"},
       parse_gitops_cluster},
      {"environmentGroup",
       {"environmentGroups", "environmentgroup", "environmentgroups", "envgroup", "envgroups"},
       parse_environment_group},
      {"pipeline", {"pipelines"}, parse_pipeline_object},
      {"application", {"applications", "app", "apps"}, parse_application_object},
      {"applicationSet",
       {"applicationSets", "applicationsets", "applicationset", "appset", "appsets"},
       parse_application_set_object},
  };
  return list;
}

const KindSpec* find_kind(const std::string& name) {
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  auto want = lower(name);
  for (const auto& k : kinds()) {
    if (lower(k.name) == want) return &k;
    for (const auto& a : k.aliases) {
      if (lower(a) == want) return &k;
    }
  }
  return nullptr;
}

void parse_pipeline_object(const yaml::Document& doc, Object& obj, std::vector<Problem>& problems) {
  auto before = problems.size();
  Pipeline p = parse_pipeline(doc.value, doc.where, problems);
  if (problems.size() != before) return;
  obj.identifier = p.identifier;
  obj.name = p.name;
  obj.model = to_json(p);
  auto ref = [&](const std::string& kind, const std::string& id, const std::string& location,
                 const std::string& expect, const std::string& role) {
    if (id.empty() || expression::has_expression(id)) return;
    obj.references.push_back({kind, id, location, expect, role});
  };
  for (const auto& [id, where] : secret_refs(p.variables)) {
    ref("secret", id, where, "", "a pipeline variable");
  }
  for (const auto& stage : p.stages) {
    for (const auto& [id, where] : secret_refs(stage.variables)) {
      ref("secret", id, where, "", "a stage variable");
    }
    if (stage.type == "Deployment") {
      ref("service", stage.service_ref, stage.location, "", "stage '" + stage.identifier + "'");
      if (stage.environment) {
        const auto& e = *stage.environment;
        ref("environment", e.environment_ref, e.location, "", "stage '" + stage.identifier + "'");
        for (const auto& cluster : e.gitops_clusters) {
          ref("gitopsCluster", cluster, e.location, e.environment_ref,
              "stage '" + stage.identifier + "'");
        }
        for (const auto& infra : e.infrastructure_refs) {
          ref("infrastructureDefinition", infra, e.location, e.environment_ref,
              "stage '" + stage.identifier + "'");
        }
      }
      if (stage.environment_group) {
        // The group must hold each environment the stage names (expect: "a|b").
        const auto& g = *stage.environment_group;
        std::string members;
        for (const auto& e : g.environments) {
          if (expression::has_expression(e.environment_ref)) continue;
          members += (members.empty() ? "" : "|") + e.environment_ref;
        }
        ref("environmentGroup", g.env_group_ref, g.location, members,
            "stage '" + stage.identifier + "'");
        for (const auto& e : g.environments) {
          ref("environment", e.environment_ref, e.location, "", "stage '" + stage.identifier + "'");
          for (const auto& cluster : e.gitops_clusters) {
            ref("gitopsCluster", cluster, e.location, e.environment_ref,
                "stage '" + stage.identifier + "'");
          }
        }
      }
    }
    auto visit = [&](const Node& step) {
      StepTypeUse use{step.type, step.type_location, step.identifier, step.spec, {}};
      if (!step.spec_pointer.empty()) {
        std::function<void(const json&, const std::string&)> locate = [&](const json& v,
                                                                          const std::string& p) {
          use.spec_locations[p] = doc.where.locate(step.spec_pointer + p);
          if (v.is_object()) {
            for (const auto& [k, c] : v.items()) locate(c, p + "/" + yaml::pointer_escape(k));
          } else if (v.is_array()) {
            for (std::size_t i = 0; i < v.size(); ++i) locate(v[i], p + "/" + std::to_string(i));
          }
        };
        locate(step.spec, "");
      } else {
        use.spec_locations[""] = step.location;
      }
      obj.step_types.push_back(std::move(use));
      if (step.type != "HarnessApproval") return;
      const auto approvers = step.spec.value("approvers", json::object());
      for (const auto& g : approvers.value("userGroups", json::array())) {
        if (!g.is_string()) continue;
        auto id = strip_scope(g.get<std::string>());
        if (id == "_project_all_users" || id == "_account_all_users" ||
            id == "_organization_all_users") {
          continue;
        }
        ref("userGroup", id, step.location, "", "approval step '" + step.identifier + "'");
      }
    };
    for_each_step(stage.steps, visit);
    for_each_step(stage.rollback_steps, visit);
  }
}

Object parse_object(const std::string& kind, const std::string& yaml_text,
                    const std::string& file_name) {
  const auto* spec = find_kind(kind);
  if (spec == nullptr) throw ValidationError({{"", "unknown kind '" + kind + "'"}});
  std::vector<Problem> problems;
  yaml::Document doc;
  try {
    doc = yaml::load(yaml_text, file_name);
  } catch (const yaml::Error& e) {
    throw ValidationError(
        {{e.file() + ":" + std::to_string(e.mark().line) + ":" + std::to_string(e.mark().column),
          e.message()}});
  }
  Object obj;
  obj.kind = spec->name;
  obj.document = doc.value;
  obj.yaml = yaml_text;
  obj.source = file_name + ":" + std::to_string(doc.start.line);
  if (!parse_document(*spec, doc, obj, problems)) throw ValidationError(std::move(problems));
  return obj;
}

std::vector<Object> parse_objects(const std::vector<SourceFile>& files) {
  std::vector<Problem> problems;
  std::vector<Object> out;
  std::map<std::string, std::string> seen; // kind/identifier -> where first defined
  for (const auto& file : files) {
    std::vector<yaml::Document> docs;
    try {
      docs = yaml::load_all(file.content, file.name);
    } catch (const yaml::Error& e) {
      problems.push_back(
          {e.file() + ":" + std::to_string(e.mark().line) + ":" + std::to_string(e.mark().column),
           e.message()});
      continue;
    }
    auto texts = split_documents(file.content, docs.size());
    for (std::size_t i = 0; i < docs.size(); ++i) {
      const auto& doc = docs[i];
      if (doc.value.is_null()) continue;
      Checker check(doc.where, problems);
      if (!doc.value.is_object()) {
        check.error("", std::string("a document must be a mapping with one top-level key naming "
                                    "its kind (e.g. 'pipeline:'), not ") +
                            type_name(doc.value));
        continue;
      }
      // Kubernetes-style documents (apiVersion + kind): Argo CD's Application.
      std::string k8s_kind;
      if (doc.value.contains("apiVersion") && doc.value.contains("kind")) {
        const auto& api = doc.value["apiVersion"];
        const auto& kv = doc.value["kind"];
        if (api != "argoproj.io/v1alpha1" || (kv != "Application" && kv != "ApplicationSet")) {
          check.error("/kind", "unsupported document: apiVersion " + api.dump() + ", kind " +
                                   kv.dump() +
                                   " (this coordinator accepts argoproj.io/v1alpha1 Application "
                                   "and ApplicationSet, and the Harness-shaped kinds under one "
                                   "top-level key)");
          continue;
        }
        k8s_kind = kv == "Application" ? "application" : "applicationSet";
      }
      if (k8s_kind.empty() && doc.value.size() != 1) {
        std::string keys;
        for (const auto& [k, v] : doc.value.items()) keys += (keys.empty() ? "" : ", ") + k;
        check.error("", "a document must have exactly one top-level key naming its kind "
                        "(e.g. 'pipeline:'); found: " +
                            keys);
        continue;
      }
      const std::string kind = k8s_kind.empty() ? doc.value.begin().key() : k8s_kind;
      const KindSpec* spec = nullptr;
      for (const auto& k : kinds()) {
        if (k.name == kind) spec = &k;
      }
      if (spec == nullptr) {
        std::string list;
        for (const auto& k : kinds()) list += (list.empty() ? "" : ", ") + k.name;
        check.error("/" + yaml::pointer_escape(kind),
                    "unknown kind '" + kind + "' (this coordinator accepts: " + list + ")");
        continue;
      }
      Object obj;
      obj.kind = kind;
      obj.document = doc.value;
      obj.source = file.name + ":" + std::to_string(doc.start.line);
      obj.yaml = texts.empty() ? yaml::dump(doc.value) : texts[i].text;
      obj.file = file.name;
      obj.line_offset = texts.empty() ? 0 : texts[i].first_line - 1;
      obj.base_dir = file.dir;
      if (!parse_document(*spec, doc, obj, problems)) continue;
      if (obj.secret_value) {
        // The value never reaches the store as text: keep the document without it.
        obj.document[kind]["spec"].erase("value");
        obj.yaml = yaml::dump(obj.document);
        obj.line_offset = 0;
      }
      auto key = obj.kind + "/" + obj.identifier;
      auto [it, fresh] = seen.emplace(key, obj.source);
      if (!fresh) {
        problems.push_back(
            {obj.source, obj.kind + " '" + obj.identifier + "' is also defined at " + it->second});
        continue;
      }
      out.push_back(std::move(obj));
    }
  }
  if (!problems.empty()) throw ValidationError(std::move(problems));
  return out;
}

} // namespace capstan::model
