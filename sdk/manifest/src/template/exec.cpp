// The template executor, a port of Go's text/template/exec.go: the same evaluation order,
// variable scoping, truth rules and error messages ("executing X at <node>: ...").
#include <optional>

#include "capstan/manifest/template.h"
#include "funcs.h"
#include "gofmt.h"
#include "gostrings.h"
#include "parser.h"
#include "value.h"

namespace capstan::manifest {

namespace tmpl {
namespace {

using TreeSet = std::map<std::string, std::shared_ptr<const Tree>>;
using Final = std::optional<Value>; // absent: no value piped in (Go's missingVal)

enum class Flow { Normal, Break, Continue };

// What every state of one execution shares.
struct Shared {
  const TreeSet& trees;
  const RenderOptions& options;
  std::vector<std::string>* warnings;
  std::size_t steps = 0;
  int nesting = 0; // walk and pipeline recursion across all states, bounded to spare the stack
};

constexpr int kMaxNesting = 1000;

class State {
public:
  State(Shared& shared, const Tree* tree, std::string* out, int depth)
      : shared_(shared), tree_(tree), out_(out), depth_(depth) {}

  void run(const Value& dot) {
    vars_.push_back({"$", dot});
    walk(dot, *tree_->root);
  }

private:
  struct Var {
    std::string name;
    Value value;
  };

  Shared& shared_;
  const Tree* tree_;
  std::string* out_;
  int depth_;
  const Node* node_ = nullptr;
  std::vector<Var> vars_;

  void at(const Node* n) { node_ = n; }

  [[noreturn]] void errorf(const std::string& message) {
    if (node_ == nullptr) throw TemplateError(tree_->parse_name, 0, 0, message);
    Location loc = locate(*node_);
    std::string context = node_->str();
    if (utf8_count(context) > 20) {
      std::size_t i = 0;
      for (int n = 0; n < 20; ++n) {
        std::int32_t r = 0;
        i += static_cast<std::size_t>(utf8_decode(context, i, r));
      }
      context = context.substr(0, i) + "...";
    }
    throw TemplateError(loc.file, loc.line, loc.column,
                        "executing " + go_quote(tree_->name) + " at <" + context + ">: " + message);
  }

  void step() {
    if (++shared_.steps > shared_.options.max_steps) {
      errorf("template exceeds " + std::to_string(shared_.options.max_steps) +
             " evaluation steps (a runaway range?)");
    }
  }

  // ---- variables ----
  void push(const std::string& name, Value v) { vars_.push_back({name, std::move(v)}); }
  void set_var(const std::string& name, Value v) {
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
      if (it->name == name) {
        it->value = std::move(v);
        return;
      }
    }
    errorf("undefined variable: " + name);
  }
  void set_top_var(std::size_t n, Value v) { vars_[vars_.size() - n].value = std::move(v); }
  Value var_value(const std::string& name) {
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
      if (it->name == name) return it->value;
    }
    errorf("undefined variable: " + name);
  }

  // Counts one level of recursion for as long as it lives.
  struct Nest {
    State& s;
    explicit Nest(State& state) : s(state) {
      if (++s.shared_.nesting > kMaxNesting) {
        --s.shared_.nesting;
        s.errorf("exceeded maximum nesting depth (" + std::to_string(kMaxNesting) + ")");
      }
    }
    ~Nest() { --s.shared_.nesting; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;
  };

  // ---- walking ----
  Flow walk(const Value& dot, const Node& node) {
    Nest nest(*this);
    step();
    at(&node);
    switch (node.type) {
    case NodeType::Action: {
      const auto& a = static_cast<const ActionNode&>(node);
      Value val = eval_pipeline(dot, *a.pipe);
      if (a.pipe->decl.empty()) print_value(a, val);
      return Flow::Normal;
    }
    case NodeType::Break:
      return Flow::Break;
    case NodeType::Continue:
      return Flow::Continue;
    case NodeType::Comment:
      return Flow::Normal;
    case NodeType::If:
    case NodeType::With:
      return walk_if_or_with(dot, static_cast<const BranchNode&>(node));
    case NodeType::List:
      for (const auto& n : static_cast<const ListNode&>(node).nodes) {
        Flow f = walk(dot, *n);
        if (f != Flow::Normal) return f;
      }
      return Flow::Normal;
    case NodeType::Range:
      walk_range(dot, static_cast<const BranchNode&>(node));
      return Flow::Normal;
    case NodeType::Template:
      walk_template(dot, static_cast<const TemplateNode&>(node));
      return Flow::Normal;
    case NodeType::Text:
      write(static_cast<const TextNode&>(node).text);
      return Flow::Normal;
    default:
      errorf("unknown node: " + node.str());
    }
  }

  void write(const std::string& s) {
    if (out_->size() + s.size() > shared_.options.max_output_bytes) {
      errorf("template output exceeds " + std::to_string(shared_.options.max_output_bytes) +
             " bytes");
    }
    *out_ += s;
  }

  Flow walk_if_or_with(const Value& dot, const BranchNode& node) {
    std::size_t mark = vars_.size();
    Value val = eval_pipeline(dot, *node.pipe);
    Flow f = Flow::Normal;
    if (truth(val)) {
      f = walk(node.type == NodeType::With ? val : dot, *node.list);
    } else if (node.else_list) {
      f = walk(dot, *node.else_list);
    }
    vars_.resize(mark);
    return f;
  }

  void walk_range(const Value& dot, const BranchNode& r) {
    at(&r);
    std::size_t outer = vars_.size();
    Value val = eval_pipeline(dot, *r.pipe).unboxed();
    std::size_t mark = vars_.size();
    const auto& decl = r.pipe->decl;
    auto one = [&](Value index, Value elem) -> Flow {
      if (!decl.empty()) {
        if (r.pipe->is_assign) {
          set_var(decl[0]->ident[0], decl.size() > 1 ? index : elem);
        } else {
          set_top_var(1, elem);
        }
      }
      if (decl.size() > 1) {
        if (r.pipe->is_assign) {
          set_var(decl[1]->ident[0], elem);
        } else {
          set_top_var(2, index);
        }
      }
      Flow f = walk(elem, *r.list);
      vars_.resize(mark);
      return f;
    };
    bool iterated = false;
    switch (val.kind()) {
    case Value::Kind::List:
      for (std::size_t i = 0; i < val.size(); ++i) {
        iterated = true;
        if (one(Value::integer(static_cast<std::int64_t>(i)), val.element(i)) == Flow::Break) break;
      }
      break;
    case Value::Kind::Map: {
      bool string_map = val.concrete_type() == "map[string]string";
      for (const auto& [k, _] : val.data().items()) {
        iterated = true;
        Value elem = val.member(k);
        if (string_map) elem = elem.unboxed();
        if (one(Value::string(k), elem) == Flow::Break) break;
      }
      break;
    }
    case Value::Kind::Int: {
      if (decl.size() > 1) {
        errorf("can't use " + sprint_value(val) + " to iterate over more than one variable");
      }
      for (std::int64_t i = 0; i < val.as_int(); ++i) {
        iterated = true;
        if (one(Value::integer(i), Value::integer(i)) == Flow::Break) break;
      }
      break;
    }
    case Value::Kind::Invalid:
      break; // nothing to range over: the else branch runs
    default:
      errorf("range can't iterate over " + sprint_value(val));
    }
    if (!iterated && r.else_list) walk(dot, *r.else_list);
    vars_.resize(outer);
  }

  void walk_template(const Value& dot, const TemplateNode& t) {
    at(&t);
    auto it = shared_.trees.find(t.name);
    if (it == shared_.trees.end()) errorf("template " + go_quote(t.name) + " not defined");
    if (depth_ >= shared_.options.max_depth) {
      errorf("exceeded maximum template depth (" + std::to_string(shared_.options.max_depth) + ")");
    }
    Value new_dot = t.pipe ? eval_pipeline(dot, *t.pipe) : Value();
    State callee(shared_, it->second.get(), out_, depth_ + 1);
    callee.run(new_dot);
  }

  std::string include(const std::string& name, const Value& data) {
    auto it = shared_.trees.find(name);
    if (it == shared_.trees.end()) throw FuncError("template " + go_quote(name) + " not defined");
    if (depth_ >= shared_.options.max_depth) {
      throw FuncError("exceeded maximum template depth (" +
                      std::to_string(shared_.options.max_depth) + ")");
    }
    std::string buffer;
    State callee(shared_, it->second.get(), &buffer, depth_ + 1);
    callee.run(data.unboxed());
    return buffer;
  }

  void print_value(const ActionNode& n, const Value& v) {
    at(&n);
    if (!v.valid()) {
      if (shared_.warnings) {
        const Node* where =
            n.pipe->cmds.empty() ? static_cast<const Node*>(n.pipe.get()) : n.pipe->cmds[0].get();
        Location loc = locate(*where);
        shared_.warnings->push_back(loc.file + ":" + std::to_string(loc.line) + ":" +
                                    std::to_string(loc.column) + ": " + n.str() +
                                    " has no value; it rendered as \"<no value>\"");
      }
      write("<no value>");
      return;
    }
    write(sprint_value(v));
  }

  // ---- evaluation ----
  Value eval_pipeline(const Value& dot, const PipeNode& pipe) {
    Nest nest(*this);
    at(&pipe);
    Final value;
    for (const auto& cmd : pipe.cmds) {
      // The previous command's result is this one's final argument; interface values are
      // unwrapped one level after each command, as Go does.
      value = eval_command(dot, *cmd, value).unboxed();
    }
    Value result = value.value_or(Value());
    for (const auto& v : pipe.decl) {
      if (pipe.is_assign) {
        set_var(v->ident[0], result);
      } else {
        push(v->ident[0], result);
      }
    }
    return result;
  }

  void not_a_function(const std::vector<NodePtr>& args, const Final& final) {
    if (args.size() > 1 || final) errorf("can't give argument to non-function " + args[0]->str());
  }

  Value eval_command(const Value& dot, const CommandNode& cmd, const Final& final) {
    step();
    const Node& first = *cmd.args[0];
    switch (first.type) {
    case NodeType::Field:
      return eval_field_node(dot, static_cast<const FieldNode&>(first), &cmd.args, final);
    case NodeType::Chain:
      return eval_chain_node(dot, static_cast<const ChainNode&>(first), &cmd.args, final);
    case NodeType::Identifier:
      return eval_function(dot, static_cast<const IdentifierNode&>(first), cmd, &cmd.args, final);
    case NodeType::Pipe:
      not_a_function(cmd.args, final);
      return eval_pipeline(dot, static_cast<const PipeNode&>(first));
    case NodeType::Variable:
      return eval_variable_node(dot, static_cast<const VariableNode&>(first), &cmd.args, final);
    default:
      break;
    }
    at(&first);
    not_a_function(cmd.args, final);
    switch (first.type) {
    case NodeType::Bool:
      return Value::boolean(static_cast<const BoolNode&>(first).value);
    case NodeType::Dot:
      return dot;
    case NodeType::Nil:
      errorf("nil is not a command");
    case NodeType::Number:
      return ideal_constant(static_cast<const NumberNode&>(first));
    case NodeType::String:
      return Value::string(static_cast<const StringNode&>(first).text);
    default:
      errorf("can't evaluate command " + go_quote(first.str()));
    }
  }

  Value ideal_constant(const NumberNode& n) {
    at(&n);
    bool looks_float = n.text.find_first_of(".eEpP") != std::string::npos;
    bool hex = n.text.size() > 1 && (n.text[1] == 'x' || n.text[1] == 'X' ||
                                     (n.text.size() > 2 && (n.text[2] == 'x' || n.text[2] == 'X')));
    if (n.is_float && !n.is_char && !hex && looks_float) return Value::floating(n.float_value);
    if (n.is_int) return Value::integer(n.int_value);
    errorf(n.text + " overflows int");
  }

  Value eval_field_node(const Value& dot, const FieldNode& field, const std::vector<NodePtr>* args,
                        const Final& final) {
    at(&field);
    return eval_field_chain(dot, dot, field, field.ident, 0, args, final);
  }

  Value eval_chain_node(const Value& dot, const ChainNode& chain, const std::vector<NodePtr>* args,
                        const Final& final) {
    at(&chain);
    if (chain.node->type == NodeType::Nil)
      errorf("indirection through explicit nil in " + chain.str());
    Value pipe = eval_arg(dot, Param::None, *chain.node);
    return eval_field_chain(dot, pipe, chain, chain.field, 0, args, final);
  }

  Value eval_variable_node(const Value& dot, const VariableNode& var,
                           const std::vector<NodePtr>* args, const Final& final) {
    at(&var);
    Value value = var_value(var.ident[0]);
    if (var.ident.size() == 1) {
      if (args) not_a_function(*args, final);
      return value;
    }
    return eval_field_chain(dot, value, var, var.ident, 1, args, final);
  }

  Value eval_field_chain(const Value& dot, Value receiver, const Node& node,
                         const std::vector<std::string>& ident, std::size_t from,
                         const std::vector<NodePtr>* args, const Final& final) {
    for (std::size_t i = from; i + 1 < ident.size(); ++i) {
      receiver = eval_field(dot, ident[i], node, nullptr, std::nullopt, receiver);
    }
    return eval_field(dot, ident.back(), node, args, final, receiver);
  }

  Value eval_field(const Value&, const std::string& name, const Node& node,
                   const std::vector<NodePtr>* args, const Final& final, const Value& receiver) {
    (void)node;
    if (!receiver.valid()) {
      if (shared_.options.missing_key_error) errorf("nil data; no entry for key " + go_quote(name));
      return Value();
    }
    if (receiver.is_nil()) errorf("nil pointer evaluating " + receiver.type_name() + "." + name);
    bool has_args = (args && args->size() > 1) || final.has_value();
    if (receiver.kind() == Value::Kind::Map) {
      if (has_args) errorf(name + " is not a method but has arguments");
      bool found = false;
      Value result = receiver.member(name, &found);
      if (!found && shared_.options.missing_key_error) {
        errorf("map has no entry for key " + go_quote(name));
      }
      return result;
    }
    errorf("can't evaluate field " + name + " in type " + receiver.type_name());
  }

  Value eval_function(const Value& dot, const IdentifierNode& ident, const Node& cmd,
                      const std::vector<NodePtr>* args, const Final& final) {
    at(&ident);
    const auto& table = functions();
    auto it = table.find(ident.name);
    if (it == table.end()) errorf(go_quote(ident.name) + " is not a defined function");
    return eval_call(dot, it->second, cmd, ident.name, args, final);
  }

  Value eval_call(const Value& dot, const Func& fn, const Node& node, const std::string& name,
                  const std::vector<NodePtr>* all_args, const Final& final) {
    // The zeroth argument is the function's own name.
    std::vector<const Node*> args;
    if (all_args) {
      for (std::size_t i = 1; i < all_args->size(); ++i) args.push_back((*all_args)[i].get());
    }
    std::size_t num_in = args.size() + (final ? 1 : 0);
    std::size_t num_fixed = args.size();
    if (fn.variadic) {
      num_fixed = fn.params.size() - 1;
      if (num_in < num_fixed) {
        errorf("wrong number of args for " + name + ": want at least " + std::to_string(num_fixed) +
               " got " + std::to_string(args.size()));
      }
    } else if (num_in != fn.params.size()) {
      errorf("wrong number of args for " + name + ": want " + std::to_string(fn.params.size()) +
             " got " + std::to_string(num_in));
    }
    auto param_at = [&](std::size_t i) {
      return i < fn.params.size() - (fn.variadic ? 1 : 0) ? fn.params[i] : fn.params.back();
    };
    if (name == "and" || name == "or") {
      // Short-circuit: the first falsy (and) or truthy (or) argument, else the last.
      bool want = name == "or";
      Value v;
      for (const Node* a : args) {
        v = eval_arg(dot, Param::Raw, *a);
        if (truth(v) == want) return v;
      }
      if (final) {
        v = *final;
      }
      return v;
    }
    std::vector<Value> argv;
    argv.reserve(num_in);
    for (std::size_t i = 0; i < args.size(); ++i)
      argv.push_back(eval_arg(dot, param_at(i), *args[i]));
    if (final) argv.push_back(validate_type(*final, param_at(args.size())));
    CallContext ctx;
    ctx.include = [this](const std::string& n, const Value& data) { return include(n, data); };
    try {
      return fn.call(ctx, argv);
    } catch (const FuncError& e) {
      at(&node);
      errorf("error calling " + name + ": " + e.what());
    }
  }

  Value nil_for(Param p) {
    switch (p) {
    case Param::Any:
      return Value::nil();
    case Param::Map:
      return Value::make(json::object());
    default:
      return Value();
    }
  }

  // Go's validateType: a value is checked against (and converted to) the parameter's type.
  Value validate_type(const Value& value, Param p) {
    if (p == Param::None || p == Param::Raw) return value;
    if (!value.valid()) {
      if (p == Param::Any || p == Param::Map) return nil_for(p);
      errorf("invalid value; expected " + param_type_name(p));
    }
    if (p == Param::Any) return value;
    Value v = value.unboxed();
    bool ok = false;
    switch (p) {
    case Param::String:
      ok = v.kind() == Value::Kind::String;
      break;
    case Param::Int:
      ok = v.kind() == Value::Kind::Int;
      break;
    case Param::Float:
      ok = v.kind() == Value::Kind::Float;
      break;
    case Param::Bool:
      ok = v.kind() == Value::Kind::Bool;
      break;
    case Param::Map:
      ok = v.kind() == Value::Kind::Map && v.concrete_type() == "map[string]interface {}";
      if (!ok && value.is_nil()) return nil_for(p);
      break;
    default:
      break;
    }
    if (ok) return v;
    std::string got = value.boxed() && !value.is_nil() ? v.concrete_type() : value.type_name();
    errorf("wrong type for value; expected " + param_type_name(p) + "; got " + got);
  }

  Value eval_arg(const Value& dot, Param p, const Node& n) {
    at(&n);
    switch (n.type) {
    case NodeType::Dot:
      return validate_type(dot, p);
    case NodeType::Nil:
      if (p == Param::Any || p == Param::Map || p == Param::Raw || p == Param::None) {
        return nil_for(p == Param::Raw ? Param::Any : p);
      }
      errorf("cannot assign nil to " + param_type_name(p));
    case NodeType::Field:
      return validate_type(
          eval_field_node(dot, static_cast<const FieldNode&>(n), nullptr, std::nullopt), p);
    case NodeType::Variable:
      return validate_type(
          eval_variable_node(dot, static_cast<const VariableNode&>(n), nullptr, std::nullopt), p);
    case NodeType::Pipe:
      return validate_type(eval_pipeline(dot, static_cast<const PipeNode&>(n)), p);
    case NodeType::Identifier:
      return validate_type(
          eval_function(dot, static_cast<const IdentifierNode&>(n), n, nullptr, std::nullopt), p);
    case NodeType::Chain:
      return validate_type(
          eval_chain_node(dot, static_cast<const ChainNode&>(n), nullptr, std::nullopt), p);
    default:
      break;
    }
    switch (p) {
    case Param::Bool:
      if (n.type == NodeType::Bool) return Value::boolean(static_cast<const BoolNode&>(n).value);
      errorf("expected bool; found " + n.str());
    case Param::Int:
      if (n.type == NodeType::Number && static_cast<const NumberNode&>(n).is_int) {
        return Value::integer(static_cast<const NumberNode&>(n).int_value);
      }
      errorf("expected integer; found " + n.str());
    case Param::Float:
      if (n.type == NodeType::Number && static_cast<const NumberNode&>(n).is_float) {
        return Value::floating(static_cast<const NumberNode&>(n).float_value);
      }
      errorf("expected float; found " + n.str());
    case Param::String:
      if (n.type == NodeType::String) return Value::string(static_cast<const StringNode&>(n).text);
      errorf("expected string; found " + n.str());
    case Param::Any:
    case Param::Raw:
    case Param::None:
      switch (n.type) {
      case NodeType::Bool:
        return Value::boolean(static_cast<const BoolNode&>(n).value);
      case NodeType::Number:
        return ideal_constant(static_cast<const NumberNode&>(n));
      case NodeType::String:
        return Value::string(static_cast<const StringNode&>(n).text);
      default:
        break;
      }
      break;
    default:
      break;
    }
    errorf("can't handle " + n.str() + " for arg of type " + param_type_name(p));
  }
};

} // namespace

} // namespace tmpl

TemplateSet::TemplateSet() = default;
TemplateSet::~TemplateSet() = default;
TemplateSet::TemplateSet(TemplateSet&&) noexcept = default;
TemplateSet& TemplateSet::operator=(TemplateSet&&) noexcept = default;

void TemplateSet::parse(const std::string& name, std::string_view text) {
  auto parsed = tmpl::parse(name, text, tmpl::is_function);
  for (auto& [tree_name, tree] : parsed) {
    auto it = trees_.find(tree_name);
    // Like Go's AddParseTree: an empty tree never replaces an existing one.
    if (it != trees_.end() && tmpl::is_empty_tree(*tree) && tree_name != name) continue;
    trees_[tree_name] = tree;
  }
}

bool TemplateSet::contains(const std::string& name) const {
  return trees_.count(name) > 0;
}

std::string TemplateSet::execute(const std::string& name, const nlohmann::json& data,
                                 const RenderOptions& options,
                                 std::vector<std::string>* warnings) const {
  auto it = trees_.find(name);
  if (it == trees_.end()) {
    throw TemplateError(name, 0, 0, "no template " + tmpl::go_quote(name) + " in the set");
  }
  tmpl::Shared shared{trees_, options, warnings};
  std::string out;
  auto holder = std::make_shared<const nlohmann::json>(data);
  tmpl::State state(shared, it->second.get(), &out, 0);
  state.run(tmpl::Value::of(holder, holder.get(), false));
  return out;
}

std::string render_template(std::string_view text, const nlohmann::json& data,
                            const std::string& name, const RenderOptions& options,
                            std::vector<std::string>* warnings) {
  TemplateSet set;
  set.parse(name, text);
  return set.execute(name, data, options, warnings);
}

} // namespace capstan::manifest
