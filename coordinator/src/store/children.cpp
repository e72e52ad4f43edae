// An execution's stages and steps as one value: a format byte, then each record's fields in the
// order of its table's columns, integers as zigzag varints, texts (JSON included) as a varint
// length and their bytes, so any text a table holds round-trips unchanged.
#include "store/children.h"

#include <algorithm>
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

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_int(std::string& out, std::int64_t v) {
  put_varint(out, (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
}

void put_text(std::string& out, std::string_view text) {
  put_varint(out, text.size());
  out.append(text);
}

void put_json(std::string& out, const nlohmann::json& j) {
  put_text(out, column_text(j));
}

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
  nlohmann::json json() { return nlohmann::json::parse(text()); }
  std::size_t count() {
    const auto n = varint();
    if (n > data_.size()) fail(); // every record takes more than a byte
    return static_cast<std::size_t>(n);
  }
  bool done() const { return at_ == data_.size(); }
  [[noreturn]] void fail() const {
    throw std::runtime_error("execution " + id_ + ": its stored stages and steps are unreadable " +
                             "at byte " + std::to_string(at_) + " of " +
                             std::to_string(data_.size()));
  }

private:
  std::string_view data_;
  const std::string& id_;
  std::size_t at_ = 0;
};

} // namespace

void encode_children(const ExecutionRecord& e, std::string& out) {
  out.clear();
  out.push_back(kFormat);
  put_varint(out, e.stages.size());
  for (const auto& s : e.stages) {
    put_int(out, s.index);
    put_text(out, s.identifier);
    put_text(out, s.name);
    put_text(out, s.type);
    put_text(out, s.status);
    put_int(out, s.started_at);
    put_int(out, s.ended_at);
    put_int(out, s.parallel_group);
    put_text(out, s.error_type);
    put_text(out, s.message);
    put_text(out, s.lock_key);
    put_int(out, s.queued_at);
    put_json(out, s.context);
    put_json(out, s.state);
  }
  put_varint(out, e.steps.size());
  for (const auto& s : e.steps) {
    put_int(out, s.stage_index);
    put_int(out, s.step_index);
    put_text(out, s.stage_identifier);
    put_text(out, s.identifier);
    put_text(out, s.name);
    put_text(out, s.type);
    put_text(out, s.status);
    put_int(out, static_cast<std::int64_t>(s.attempt));
    put_text(out, s.task_id);
    put_text(out, s.delegate);
    put_text(out, s.delegate_instance);
    put_int(out, s.queued_at);
    put_int(out, s.started_at);
    put_int(out, s.ended_at);
    put_int(out, s.timeout_ms);
    put_text(out, s.error_type);
    put_text(out, s.message);
    put_json(out, s.outputs);
    put_int(out, static_cast<std::int64_t>(s.log_cursor));
    put_text(out, s.kind);
    put_int(out, s.parent);
    put_text(out, s.section);
    put_int(out, s.retries);
    put_int(out, s.wake_at);
    put_json(out, s.state);
  }
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
    s.context = r.json();
    s.state = r.json();
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
    s.outputs = r.json();
    s.log_cursor = static_cast<std::uint64_t>(r.integer());
    s.kind = r.text();
    s.parent = r.small();
    s.section = r.text();
    s.retries = r.small();
    s.wake_at = r.integer();
    s.state = r.json();
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
