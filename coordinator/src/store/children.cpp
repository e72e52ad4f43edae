// An execution's stages and steps as one value: a format byte, then each record's fields in the
// order of its table's columns, integers as zigzag varints, texts (JSON included) as a varint
// length and their bytes, so any text a table holds round-trips unchanged.
#include "store/children.h"
#include "store/stored_json.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <tuple>

namespace capstan::store {

std::string column_text(const nlohmann::json& j) {
  if (j.empty() && j.is_object()) return "{}";
  if (j.empty() && j.is_array()) return "[]";
  return j.dump();
}

namespace {

constexpr char kFormat = 1;

// Writes into `out` through a pointer, growing it only when a field would not fit: appending
// byte by byte checked the string's capacity at every byte.
class Writer {
public:
  explicit Writer(std::string& out) : out_(out) {
    out_.resize(std::max<std::size_t>(out_.capacity(), 1024));
    at_ = out_.data();
    end_ = at_ + out_.size();
  }
  void byte(char c) {
    room(1);
    *at_++ = c;
  }
  void varint(std::uint64_t v) {
    room(10);
    put(v);
  }
  void integer(std::int64_t v) {
    varint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }
  void text(std::string_view text) {
    room(10 + text.size());
    put(text.size());
    std::memcpy(at_, text.data(), text.size());
    at_ += text.size();
  }
  void json(const nlohmann::json& j) {
    // An empty object or array, as column_text writes it, without a string of its own.
    if (j.empty() && j.is_object()) return text("{}");
    if (j.empty() && j.is_array()) return text("[]");
    text(j.dump());
  }
  void finish() { out_.resize(static_cast<std::size_t>(at_ - out_.data())); }

private:
  void room(std::size_t n) {
    if (static_cast<std::size_t>(end_ - at_) >= n) return;
    const auto used = static_cast<std::size_t>(at_ - out_.data());
    out_.resize(std::max(2 * out_.size(), used + n));
    at_ = out_.data() + used;
    end_ = out_.data() + out_.size();
  }
  void put(std::uint64_t v) {
    while (v >= 0x80) {
      *at_++ = static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    *at_++ = static_cast<char>(v);
  }

  std::string& out_;
  char* at_;
  char* end_;
};

class Reader {
public:
  Reader(std::string_view data, const std::string& id) : data_(data), id_(id) {}

  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at_ >= data_.size()) fail();
      const auto byte = static_cast<unsigned char>(data_[at_++]);
      v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return v;
    }
    fail();
  }
  std::int64_t integer() {
    const auto v = varint();
    return static_cast<std::int64_t>((v >> 1) ^ (~(v & 1) + 1));
  }
  int small() { return static_cast<int>(integer()); }
  std::string text() {
    const auto size = varint();
    if (size > data_.size() - at_) fail();
    std::string out(data_.substr(at_, size));
    at_ += size;
    return out;
  }
  // `field` names the value in the encoding ("stage 2 context"), for the error only.
  template <typename Field> nlohmann::json json(const Field& field) {
    return stored_json(text(), "executions.children", [&] { return id_ + ", " + field(); });
  }
  std::size_t count() {
    const auto n = varint();
    if (n > data_.size()) fail(); // every record takes more than a byte
    return static_cast<std::size_t>(n);
  }
  bool done() const { return at_ == data_.size(); }
  [[noreturn]] void fail() const {
    throw StoredValueDamaged("executions.children of " + id_ +
                             " is not an encoding of stages and steps this release reads (at "
                             "byte " +
                             std::to_string(at_) + " of " + std::to_string(data_.size()) + ")");
  }

private:
  std::string_view data_;
  const std::string& id_;
  std::size_t at_ = 0;
};

} // namespace

void encode_children(const ExecutionRecord& e, std::string& out) {
  Writer w(out);
  w.byte(kFormat);
  w.varint(e.stages.size());
  for (const auto& s : e.stages) {
    w.integer(s.index);
    w.text(s.identifier);
    w.text(s.name);
    w.text(s.type);
    w.text(s.status);
    w.integer(s.started_at);
    w.integer(s.ended_at);
    w.integer(s.parallel_group);
    w.text(s.error_type);
    w.text(s.message);
    w.text(s.lock_key);
    w.integer(s.queued_at);
    w.json(s.context);
    w.json(s.state);
  }
  w.varint(e.steps.size());
  for (const auto& s : e.steps) {
    w.integer(s.stage_index);
    w.integer(s.step_index);
    w.text(s.stage_identifier);
    w.text(s.identifier);
    w.text(s.name);
    w.text(s.type);
    w.text(s.status);
    w.integer(static_cast<std::int64_t>(s.attempt));
    w.text(s.task_id);
    w.text(s.delegate);
    w.text(s.delegate_instance);
    w.integer(s.queued_at);
    w.integer(s.started_at);
    w.integer(s.ended_at);
    w.integer(s.timeout_ms);
    w.text(s.error_type);
    w.text(s.message);
    w.json(s.outputs);
    w.integer(static_cast<std::int64_t>(s.log_cursor));
    w.text(s.kind);
    w.integer(s.parent);
    w.text(s.section);
    w.integer(s.retries);
    w.integer(s.wake_at);
    w.json(s.state);
  }
  w.finish();
}

void decode_children(std::string_view data, ExecutionRecord& e) {
  Reader r(data, e.id);
  if (data.empty() || data[0] != kFormat) r.fail();
  r.varint(); // the format byte, a one-byte varint
  e.stages.clear();
  e.steps.clear();
  const auto stages = r.count();
  e.stages.reserve(stages);
  for (std::size_t i = 0; i < stages; ++i) {
    StageRecord s;
    s.index = r.small();
    s.identifier = r.text();
    s.name = r.text();
    s.type = r.text();
    s.status = r.text();
    s.started_at = r.integer();
    s.ended_at = r.integer();
    s.parallel_group = r.small();
    s.error_type = r.text();
    s.message = r.text();
    s.lock_key = r.text();
    s.queued_at = r.integer();
    const auto stage = [&](const char* what) {
      return [&s, what] { return "stage " + std::to_string(s.index) + " " + what; };
    };
    s.context = r.json(stage("context"));
    s.state = r.json(stage("state"));
    e.stages.push_back(std::move(s));
  }
  const auto steps = r.count();
  e.steps.reserve(steps);
  for (std::size_t i = 0; i < steps; ++i) {
    StepRecord s;
    s.stage_index = r.small();
    s.step_index = r.small();
    s.stage_identifier = r.text();
    s.identifier = r.text();
    s.name = r.text();
    s.type = r.text();
    s.status = r.text();
    s.attempt = static_cast<std::uint32_t>(r.integer());
    s.task_id = r.text();
    s.delegate = r.text();
    s.delegate_instance = r.text();
    s.queued_at = r.integer();
    s.started_at = r.integer();
    s.ended_at = r.integer();
    s.timeout_ms = r.integer();
    s.error_type = r.text();
    s.message = r.text();
    const auto step = [&](const char* what) {
      return [&s, what] {
        return "step " + std::to_string(s.stage_index) + "." + std::to_string(s.step_index) + " " +
               what;
      };
    };
    s.outputs = r.json(step("outputs"));
    s.log_cursor = static_cast<std::uint64_t>(r.integer());
    s.kind = r.text();
    s.parent = r.small();
    s.section = r.text();
    s.retries = r.small();
    s.wake_at = r.integer();
    s.state = r.json(step("state"));
    e.steps.push_back(std::move(s));
  }
  if (!r.done()) r.fail();
  std::stable_sort(e.stages.begin(), e.stages.end(),
                   [](const auto& a, const auto& b) { return a.index < b.index; });
  std::stable_sort(e.steps.begin(), e.steps.end(), [](const auto& a, const auto& b) {
    return std::tie(a.stage_index, a.step_index) < std::tie(b.stage_index, b.step_index);
  });
}

} // namespace capstan::store
