// Following an execution: on a terminal, a live tree of stages and steps with status and
// durations under the scrolling logs (and a prompt for execution inputs); piped, plain lines.
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "commands.h"
#include "output.h"

namespace capstan::cli {

using nlohmann::json;

namespace {

bool ended(const std::string& status) {
  return status == "Succeeded" || status == "Failed" || status == "Aborted" ||
         status == "Skipped" || status == "IgnoreFailed" || status == "Expired" ||
         status == "ApprovalRejected";
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The time a stage or step has taken, or takes so far.
std::string elapsed(const json& j) {
  if (j.contains("durationMs") && j["durationMs"].is_number()) {
    return format_duration_ms(j["durationMs"]);
  }
  if (j.contains("startedAt") && j["startedAt"].is_number()) {
    return format_duration_ms(now_ms() - j["startedAt"].get<std::int64_t>());
  }
  return "";
}

const char* mark(const std::string& status) {
  if (status == "Succeeded") return "\u2713";
  if (status == "Failed" || status == "Expired" || status == "ApprovalRejected") return "\u2717";
  if (status == "Aborted") return "\u2298";
  if (status == "IgnoreFailed") return "!";
  if (status == "Skipped") return "-";
  if (status == "NotStarted") return "\u00b7";
  if (status == "Queued") return "\u2026";
  if (status == "Running" || status == "Dispatched") return "\u25b6";
  return "\u23f8"; // waiting for someone or something
}

// What a waiting step or stage asks of the user, in one line.
std::string waiting_line(const json& node, const std::string& id) {
  auto status = field_text(node, "status");
  if (status == "ApprovalWaiting") {
    std::string msg = node.value("approval", json::object()).value("message", "");
    return "approval needed" + (msg.empty() ? "" : ": " + msg) + "  (capstan approve " + id +
           " [--reject])";
  }
  if (status == "InterventionWaiting") {
    return "failed: " + field_text(node, "message") +
           "; waiting for an intervention  (capstan "
           "interventions resolve " +
           id + " ACTION)";
  }
  if (status == "InputWaiting") {
    std::string names;
    for (const auto& q : node.value("inputs", json::array())) {
      names += (names.empty() ? "" : ", ") + q.value("name", "");
    }
    return "execution input needed: " + names + "  (capstan input " + id + " --set NAME=VALUE)";
  }
  return "";
}

// A plain-text key for what was printed about a node, so changes print once.
std::string state_key(const json& node) {
  return field_text(node, "status") + "|" + field_text(node, "attempt") + "|" +
         field_text(node, "retries");
}

class Printer {
public:
  Printer(ApiClient& api, std::string id, bool tree, bool prompt)
      : api_(api), id_(std::move(id)), tree_(tree), prompt_(prompt) {}

  void update(const json& w, bool show_steps, bool prefix) {
    const json& e = w["execution"];
    clear();
    // Each step reads start, its log lines, end: a step that started and ended between two
    // answers must not show its end before its lines.
    std::vector<const json*> lines;
    for (const auto& l : w["lines"]) lines.push_back(&l);
    auto print_lines = [&](const std::string* of_step) {
      for (auto& l : lines) {
        if (l == nullptr || (of_step != nullptr && (*l)["step"] != *of_step)) continue;
        if (prefix) std::cout << (*l)["step"].get<std::string>() << " | ";
        std::cout << (*l)["line"].get<std::string>() << "\n";
        l = nullptr;
      }
    };
    if (show_steps && !tree_) {
      for (const auto& item : plan_changes(e)) {
        std::cout << item.start;
        if (!item.step.empty() && !item.end.empty()) print_lines(&item.step);
        std::cout << item.end;
      }
    }
    print_lines(nullptr);
    if (show_steps && tree_) draw(e);
    std::cout << std::flush;
    if (prompt_ && !ended(field_text(e, "status"))) ask_inputs(e);
  }

  void clear() {
    if (drawn_ > 0) std::cout << "\033[" << drawn_ << "F\033[J";
    drawn_ = 0;
  }

private:
  void line(const std::string& text) {
    std::cout << text << "\n";
    ++drawn_;
  }

  void draw(const json& e) {
    line("\033[1m" + field_text(e, "pipeline") + " #" + field_text(e, "sequence") + "\033[0m  " +
         colour_status(field_text(e, "status")) + "  " + elapsed(e));
    for (const auto& stage : e["stages"]) {
      std::string msg =
          field_text(stage, "status") == "Queued" || field_text(stage, "status") == "Skipped"
              ? "  " + field_text(stage, "message")
              : "";
      line(std::string("  ") + mark(field_text(stage, "status")) + " " +
           field_text(stage, "identifier") + " (" + field_text(stage, "type") + ")  " +
           colour_status(field_text(stage, "status")) + "  " + elapsed(stage) + msg);
      if (field_text(stage, "status") == "InputWaiting") line("      " + waiting_line(stage, id_));
      const json& steps = stage["steps"];
      bool rollback_shown = false;
      for (std::size_t i = 0; i < steps.size(); ++i) {
        const auto& s = steps[i];
        bool rollback = field_text(s, "section") == "rollback";
        if (rollback && field_text(s, "status") == "NotStarted") continue;
        if (rollback && !rollback_shown) {
          line("      rollback:");
          rollback_shown = true;
        }
        int depth = 0;
        for (int p = s.value("parent", -1); p >= 0 && p < static_cast<int>(steps.size());
             p = steps[static_cast<std::size_t>(p)].value("parent", -1)) {
          ++depth;
        }
        std::string indent(static_cast<std::size_t>(6 + 2 * depth), ' ');
        std::string name = field_text(s, "identifier");
        if (auto dot = name.rfind('.'); dot != std::string::npos) name = name.substr(dot + 1);
        std::string extra;
        if (s.value("retries", 0) > 0) extra += "  retry " + field_text(s, "retries");
        if (!field_text(s, "delegate").empty() && field_text(s, "kind") == "Step")
          extra += "  on " + field_text(s, "delegate");
        line(indent + mark(field_text(s, "status")) + " " + name + "  " + field_text(s, "type") +
             "  " + colour_status(field_text(s, "status")) + "  " + elapsed(s) + extra);
        auto waiting = waiting_line(s, id_);
        if (!waiting.empty()) line(indent + "    " + waiting);
        if ((field_text(s, "status") == "Failed" || field_text(s, "status") == "Waiting") &&
            !field_text(s, "message").empty()) {
          line(indent + "    " + field_text(s, "message"));
        }
      }
    }
  }

  // What changed since the last answer, in pipeline order: a step's start (or other
  // non-final change) and its end; a stage's line.
  struct Change {
    std::string step; // "stage.step", empty for a stage line
    std::string start, end;
  };

  std::vector<Change> plan_changes(const json& e) {
    std::vector<Change> out;
    for (const auto& stage : e["stages"]) {
      std::string skey = "stage:" + field_text(stage, "identifier");
      std::string sstate = field_text(stage, "status") + "|" + field_text(stage, "message");
      std::string stage_line; // a stage that ended is reported after its steps' last changes
      if (seen_[skey] != sstate) {
        seen_[skey] = sstate;
        auto status = field_text(stage, "status");
        if (status != "NotStarted" && status != "Running" && status != "Succeeded") {
          stage_line =
              "stage " + field_text(stage, "identifier") + ": " + colour_status(status) +
              (field_text(stage, "message").empty() ? "" : ": " + field_text(stage, "message")) +
              "\n";
          auto waiting = waiting_line(stage, id_);
          if (!waiting.empty()) stage_line += "  " + waiting + "\n";
          if (!ended(status)) {
            out.push_back({"", stage_line, ""});
            stage_line.clear();
          }
        }
      }
      for (const auto& s : stage["steps"]) {
        if (field_text(s, "kind") != "Step") continue;
        std::string key = field_text(stage, "identifier") + "." + field_text(s, "identifier");
        auto status = field_text(s, "status");
        auto state = state_key(s);
        if (seen_[key] == state) continue;
        seen_[key] = state;
        if (status == "NotStarted" || status == "Queued" || status == "Dispatched") continue;
        if (status == "Skipped") continue;
        std::ostringstream text;
        text << key << ": " << colour_status(status);
        if (status == "Running") {
          if (!field_text(s, "delegate").empty()) {
            text << " on " << field_text(s, "delegate");
            shown_delegate_.insert(key);
          }
        } else if (ended(status)) {
          // A step that ended before it was seen running (a short one, whose delegate reports
          // the end without a separate start) still says where it ran.
          if (!field_text(s, "delegate").empty() && shown_delegate_.count(key) == 0) {
            text << " on " << field_text(s, "delegate");
          }
          text << " in " << format_duration_ms(s["durationMs"]);
          if (status != "Succeeded" && !field_text(s, "message").empty()) {
            text << ": " << field_text(s, "message");
          }
        } else {
          auto waiting = waiting_line(s, id_);
          if (!waiting.empty()) {
            text << ": " << waiting;
          } else if (!field_text(s, "message").empty()) {
            text << ": " << field_text(s, "message");
          }
        }
        text << "\n";
        if (ended(status)) {
          out.push_back({key, "", text.str()});
        } else {
          out.push_back({key, text.str(), ""});
        }
      }
      if (!stage_line.empty()) out.push_back({"", "", stage_line});
    }
    return out;
  }

  // Execution inputs are asked for here when the user follows on a terminal.
  void ask_inputs(const json& e) {
    json questions = json::array();
    std::string where;
    for (const auto& stage : e["stages"]) {
      if (field_text(stage, "status") == "InputWaiting") {
        for (const auto& q : stage.value("inputs", json::array())) questions.push_back(q);
      }
      for (const auto& s : stage["steps"]) {
        if (field_text(s, "status") != "InputWaiting") continue;
        for (const auto& q : s.value("inputs", json::array())) questions.push_back(q);
      }
    }
    if (questions.empty()) return;
    std::string key;
    for (const auto& q : questions) key += field_text(q, "fqn") + ";";
    if (asked_.count(key)) return;
    asked_.insert(key);
    clear();
    std::cout << "Execution input needed:\n";
    json values = json::object();
    for (const auto& q : questions) {
      std::string hint;
      if (!q.value("allowedValues", json::array()).empty()) {
        std::string list;
        for (const auto& v : q["allowedValues"])
          list += (list.empty() ? "" : ", ") + v.get<std::string>();
        hint += " [" + list + "]";
      }
      if (!field_text(q, "default").empty()) hint += " (default " + field_text(q, "default") + ")";
      std::cout << "  " << field_text(q, "name") << hint << ": " << std::flush;
      std::string answer;
      if (!std::getline(std::cin, answer)) return; // no input: leave it to `capstan input`
      if (!answer.empty()) values[field_text(q, "fqn")] = answer;
    }
    try {
      api_.post("/api/v1/executions/" + url_encode(id_) + "/inputs", {{"values", values}});
    } catch (const CommandError& err) {
      std::cout << "not accepted: " << err.what() << "\n";
      for (const auto& d : err.details()) std::cout << "  " << d << "\n";
      asked_.erase(key); // ask again
    }
  }

  ApiClient& api_;
  std::string id_;
  bool tree_;
  bool prompt_;
  int drawn_ = 0;
  std::map<std::string, std::string> seen_;
  std::set<std::string> shown_delegate_; // steps whose "Running on <delegate>" line was printed
  std::set<std::string> asked_;
};

} // namespace

json follow_execution(ApiClient& api, const std::string& id, const std::string& step,
                      bool show_steps) {
  std::int64_t revision = 0, after = 0;
  const bool tty = show_steps && stdout_is_terminal();
  Printer printer(api, id, tty, tty && ::isatty(STDIN_FILENO) == 1);
  const bool prefix = step.empty();
  while (true) {
    std::string path = "/api/v1/executions/" + url_encode(id) +
                       "/watch?wait=" + (tty ? "1" : "20") +
                       "&revision=" + std::to_string(revision) + "&after=" + std::to_string(after) +
                       (step.empty() ? "" : "&step=" + url_encode(step));
    json w = api.get(path, 40);
    const json& e = w["execution"];
    printer.update(w, show_steps, prefix);
    after = w["next"].get<std::int64_t>();
    revision = e["revision"].get<std::int64_t>();
    if (ended(field_text(e, "status")) && w["lines"].empty()) return e;
  }
}

} // namespace capstan::cli
