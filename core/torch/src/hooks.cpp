// Forward hooks: a modkit op inserted into a module type's forward graph calls the hooks of the running module object.
#include <modkit/core/errors.hpp>
#include <modkit/torch/hooks.hpp>
#include <modkit/torch/model.hpp>

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/runtime/custom_operator.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <unordered_map>
#include <utility>

// How it works. TorchScript gives every module object of one class the same
// type, and a type's `forward` graph is shared by all of them; so the op
// inserted at the start of the graph (forward-pre) and before its return
// (forward) receives `self` and dispatches to the hooks of that object only.
// The graph executor compiles a copy of each graph (inlining callees) the
// first time a method runs, so after a graph is instrumented every method of
// the model is replaced by a fresh function over the same graph: the next run
// compiles anew and sees the op. When a graph's last hook goes, its nodes are
// removed (a saved model never carries them); executors compiled meanwhile
// keep calling the op, which then finds no hook and returns at once.

namespace modkit {
namespace {

const c10::Symbol kHookOp = c10::Symbol::fromQualString("modkit::_hook");
const c10::Symbol kKindAttr = c10::Symbol::attr("kind");

struct Hook {
  const void* owner;
  c10::intrusive_ptr<c10::ivalue::Object> object;  // kept alive: its address keys the dispatch
  std::string module;
  HookKind kind;
  std::shared_ptr<const HookFn> fn;
  const torch::jit::Graph* graph;
};

// One instrumented forward graph and the two nodes inserted into it.
struct Instrumentation {
  std::shared_ptr<torch::jit::Graph> graph;
  torch::jit::Node* pre = nullptr;
  torch::jit::Node* post = nullptr;
  size_t users = 0;
};

struct Scope {
  const void* owner;
  std::vector<HookId> keep;
};

// Open disable scopes of one model: how many, and how often each hook is kept.
struct OwnerScopes {
  size_t open = 0;
  std::unordered_map<HookId, size_t> kept;
};

struct Registry {
  std::shared_mutex mutex;
  HookId next_id = 1;
  uint64_t next_scope = 1;
  std::unordered_map<HookId, Hook> hooks;
  std::unordered_multimap<const c10::ivalue::Object*, HookId> by_object;
  std::unordered_map<const torch::jit::Graph*, Instrumentation> graphs;
  std::unordered_map<uint64_t, Scope> scopes;
  std::unordered_map<const void*, OwnerScopes> owners;
  std::atomic<size_t> live{0};  // hooks.size(), read by the op without the lock
};

// Never destroyed: a forward may still run while the process exits.
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

thread_local std::exception_ptr t_hook_failure;
thread_local int t_dispatching = 0;

std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const c10::Error& c) {
    return c.what_without_backtrace();
  } catch (const std::exception& s) {
    return s.what();
  } catch (...) {
    return "threw a value that is not a std::exception";
  }
}

bool runs(const Registry& r, const Hook& hook, HookId id) {
  const auto it = r.owners.find(hook.owner);
  return it == r.owners.end() || it->second.open == 0 || it->second.kept.count(id) != 0;
}

// The op: inputs are self, forward's arguments and (forward hook) the return value.
void dispatch(HookKind kind, torch::jit::Stack& stack, size_t n) {
  Registry& r = registry();
  const auto args = torch::jit::last(stack, n);
  const c10::ivalue::Object* object = args[0].toObject().get();
  std::vector<std::pair<std::shared_ptr<const HookFn>, std::string>> ready;
  {
    std::shared_lock<std::shared_mutex> lock(r.mutex);
    const auto range = r.by_object.equal_range(object);
    for (auto it = range.first; it != range.second; ++it) {
      const Hook& hook = r.hooks.at(it->second);
      if (hook.kind == kind && runs(r, hook, it->second)) ready.emplace_back(hook.fn, hook.module);
    }
  }
  if (ready.empty()) return;
  const size_t arg_count = kind == HookKind::Forward ? n - 2 : n - 1;
  const c10::ArrayRef<c10::IValue> inputs = args.slice(1, arg_count);
  const c10::IValue* output = kind == HookKind::Forward ? &args[n - 1] : nullptr;
  struct Depth {
    Depth() { ++t_dispatching; }
    ~Depth() { --t_dispatching; }
  } depth;
  for (const auto& [fn, module] : ready) {
    try {
      (*fn)(HookCall{module, kind, inputs, output});
    } catch (...) {
      t_hook_failure = std::current_exception();
      throw std::runtime_error("hook on module '" + module + "' failed: " + what_of(t_hook_failure));
    }
  }
}

torch::jit::Operation make_hook_operation(const torch::jit::Node* node) {
  const size_t n = node->inputs().size();
  const auto kind = static_cast<HookKind>(node->i(kKindAttr));
  return [n, kind](torch::jit::Stack& stack) {
    if (registry().live.load(std::memory_order_acquire) != 0) dispatch(kind, stack, n);
    torch::jit::drop(stack, n);
  };
}

// Registered on first use, not from a static constructor.
void register_hook_op() {
  static const torch::jit::RegisterOperators once({torch::jit::Operator(
      "modkit::_hook(...) -> ()", make_hook_operation, c10::AliasAnalysisKind::CONSERVATIVE)});
}

void insert_nodes(Instrumentation& inst) {
  torch::jit::Graph& g = *inst.graph;
  std::vector<torch::jit::Value*> inputs(g.inputs().begin(), g.inputs().end());
  inst.pre = g.create(kHookOp, inputs, 0);
  inst.pre->i_(kKindAttr, static_cast<int64_t>(HookKind::ForwardPre));
  g.prependNode(inst.pre);
  inputs.push_back(g.outputs().at(0));
  inst.post = g.create(kHookOp, inputs, 0);
  inst.post->i_(kKindAttr, static_cast<int64_t>(HookKind::Forward));
  g.appendNode(inst.post);  // before the return
}

void remove_nodes(Instrumentation& inst) {
  if (inst.pre != nullptr) inst.pre->destroy();
  if (inst.post != nullptr) inst.post->destroy();
  inst.pre = inst.post = nullptr;
}

// Replaces every method of every module type of `root` by a fresh function
// over the same graph and schema, so that no executor compiled before the
// instrumentation runs again.
void recompile(const torch::jit::Module& root) {
  std::set<const c10::ClassType*> seen;
  for (const torch::jit::Module& m : root.modules()) {
    const c10::ClassTypePtr type = m.type();
    if (!seen.insert(type.get()).second) continue;
    const std::shared_ptr<torch::jit::CompilationUnit> cu = m._ivalue()->compilation_unit();
    const std::vector<torch::jit::Function*> methods = type->methods();
    for (torch::jit::Function* fn : methods) {
      torch::jit::GraphFunction* graph_fn = torch::jit::tryToGraphFunction(*fn);
      if (graph_fn == nullptr || cu->find_function(fn->qualname()) != fn) continue;
      graph_fn->ensure_defined();
      const std::shared_ptr<torch::jit::Graph> graph = graph_fn->graph();
      const c10::FunctionSchema schema = graph_fn->getSchema();
      const c10::QualifiedName name = fn->qualname();
      const std::string method = fn->name();
      type->unsafeRemoveMethod(method);
      cu->unsafeRemoveMethod(name);  // destroys fn and its compiled executors
      torch::jit::Function* fresh = cu->create_function(name, graph);
      fresh->setSchema(schema);
      type->addMethod(fresh);
    }
  }
}

void drop_hook(Registry& r, std::unordered_map<HookId, Hook>::iterator it) {
  const Hook& hook = it->second;
  const auto range = r.by_object.equal_range(hook.object.get());
  for (auto b = range.first; b != range.second; ++b) {
    if (b->second == it->first) {
      r.by_object.erase(b);
      break;
    }
  }
  const auto g = r.graphs.find(hook.graph);
  if (g != r.graphs.end() && --g->second.users == 0) {
    remove_nodes(g->second);
    r.graphs.erase(g);
  }
  r.hooks.erase(it);
  r.live.store(r.hooks.size(), std::memory_order_release);
}

void leave_scope(Registry& r, std::unordered_map<uint64_t, Scope>::iterator it) {
  const auto owner = r.owners.find(it->second.owner);
  if (owner != r.owners.end()) {
    OwnerScopes& os = owner->second;
    --os.open;
    for (HookId id : it->second.keep) {
      const auto k = os.kept.find(id);
      if (k != os.kept.end() && --k->second == 0) os.kept.erase(k);
    }
    if (os.open == 0) r.owners.erase(owner);
  }
  r.scopes.erase(it);
}

}  // namespace

HooksDisabled& HooksDisabled::operator=(HooksDisabled&& other) noexcept {
  if (this != &other) {
    restore();
    scope_ = other.release();
  }
  return *this;
}

void HooksDisabled::restore() noexcept { detail::restore_hooks(release()); }

c10::IValue call_forward(const torch::jit::Module& module, std::vector<c10::IValue> args,
                         const std::unordered_map<std::string, c10::IValue>& kwargs) {
  t_hook_failure = nullptr;
  try {
    return module.get_method("forward")(std::move(args), kwargs);
  } catch (...) {
    if (std::exception_ptr failure = std::exchange(t_hook_failure, nullptr)) std::rethrow_exception(failure);
    throw;
  }
}

namespace detail {

HookId add_hook(Model& model, const void* owner, const std::string& module, HookKind kind, HookFn fn) {
  if (kind != HookKind::ForwardPre && kind != HookKind::Forward) {
    throw ValueError("unknown hook kind " + std::to_string(static_cast<uint32_t>(kind)) +
                     ", expected forward-pre (" + std::to_string(MODKIT_HOOK_FORWARD_PRE) + ") or forward (" +
                     std::to_string(MODKIT_HOOK_FORWARD) + ")");
  }
  if (!fn) throw ValueError("cannot add a hook to module '" + module + "': the hook is empty");
  if (t_dispatching != 0) {
    throw RuntimeError("cannot add a hook to module '" + module + "' from inside a hook: the model is running");
  }
  const torch::jit::Module target = model.find_module(module);
  torch::jit::Function* forward = target.type()->findMethod("forward");
  torch::jit::GraphFunction* graph_fn = forward != nullptr ? torch::jit::tryToGraphFunction(*forward) : nullptr;
  if (graph_fn == nullptr) {
    throw ValueError("cannot add a hook to module '" + module + "' (" + class_name_of(target) +
                     "): expected a TorchScript forward method, found none");
  }
  graph_fn->ensure_defined();
  register_hook_op();

  Registry& r = registry();
  std::unique_lock<std::shared_mutex> lock(r.mutex);
  const std::shared_ptr<torch::jit::Graph> graph = graph_fn->graph();
  auto [inst, fresh] = r.graphs.try_emplace(graph.get());
  if (fresh) {
    inst->second.graph = graph;
    insert_nodes(inst->second);
  }
  ++inst->second.users;
  const HookId id = r.next_id++;
  Hook hook{owner, target._ivalue(), module, kind, std::make_shared<const HookFn>(std::move(fn)), graph.get()};
  r.by_object.emplace(hook.object.get(), id);
  r.hooks.emplace(id, std::move(hook));
  r.live.store(r.hooks.size(), std::memory_order_release);
  if (fresh) recompile(model.module());
  return id;
}

void remove_hook(HookId id) noexcept {
  Registry& r = registry();
  std::unique_lock<std::shared_mutex> lock(r.mutex);
  const auto it = r.hooks.find(id);
  if (it != r.hooks.end()) drop_hook(r, it);
}

void remove_owner_hooks(const void* owner) noexcept {
  Registry& r = registry();
  std::unique_lock<std::shared_mutex> lock(r.mutex);
  for (auto it = r.hooks.begin(); it != r.hooks.end();) {
    auto next = std::next(it);
    if (it->second.owner == owner) drop_hook(r, it);
    it = next;
  }
  for (auto it = r.scopes.begin(); it != r.scopes.end();) {
    auto next = std::next(it);
    if (it->second.owner == owner) leave_scope(r, it);
    it = next;
  }
}

size_t hook_count(const void* owner) {
  Registry& r = registry();
  std::shared_lock<std::shared_mutex> lock(r.mutex);
  size_t n = 0;
  for (const auto& [id, hook] : r.hooks) n += hook.owner == owner ? 1 : 0;
  return n;
}

std::vector<HookId> hook_ids(const void* owner, const std::function<bool(const std::string&)>& on_module) {
  Registry& r = registry();
  std::shared_lock<std::shared_mutex> lock(r.mutex);
  std::vector<HookId> ids;
  for (const auto& [id, hook] : r.hooks) {
    if (hook.owner == owner && on_module(hook.module)) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

uint64_t disable_hooks(const void* owner, const std::vector<HookId>& keep) {
  Registry& r = registry();
  std::unique_lock<std::shared_mutex> lock(r.mutex);
  OwnerScopes& os = r.owners[owner];
  ++os.open;
  for (HookId id : keep) ++os.kept[id];
  const uint64_t scope = r.next_scope++;
  r.scopes.emplace(scope, Scope{owner, keep});
  return scope;
}

void restore_hooks(uint64_t scope) noexcept {
  if (scope == 0) return;
  Registry& r = registry();
  std::unique_lock<std::shared_mutex> lock(r.mutex);
  const auto it = r.scopes.find(scope);
  if (it != r.scopes.end()) leave_scope(r, it);
}

InstrumentationPause::InstrumentationPause(const void* owner) : owner_(owner) {
  Registry& r = registry();
  std::unique_lock<std::shared_mutex> lock(r.mutex);
  for (const auto& [id, hook] : r.hooks) {
    if (hook.owner == owner_) remove_nodes(r.graphs.at(hook.graph));
  }
}

InstrumentationPause::~InstrumentationPause() {
  Registry& r = registry();
  std::unique_lock<std::shared_mutex> lock(r.mutex);
  for (const auto& [id, hook] : r.hooks) {
    Instrumentation& inst = r.graphs.at(hook.graph);
    if (hook.owner == owner_ && inst.pre == nullptr) insert_nodes(inst);
  }
}

}  // namespace detail
}  // namespace modkit
