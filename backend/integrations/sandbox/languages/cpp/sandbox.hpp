// sandbox.hpp: what the C++ grading harness offers a submission, and the templates the generated dispatch
// file uses to call it (docs/LANGUAGES.md, "C++").
//
// A submission may `#include "sandbox.hpp"` for `sandbox::Value`, a JSON value (null, bool, integer,
// number, string, array, object) for exercises whose data mixes types; every other exercise takes plain
// standard types. This header is precompiled once per toolchain version, with the standard headers it
// includes: a submission that includes only these compiles in a fraction of a second.
//
// Arguments reach a function as `sandbox_args::Arg`, which converts to whatever parameter type the
// function declares (int, long long, double, bool, char, std::string, std::string_view, std::vector,
// std::list, std::deque, std::array, std::set, std::map, std::unordered_map, std::optional, std::pair,
// std::tuple, sandbox::Value, nested). A function template cannot deduce from an Arg, so the dispatch file
// also names each call's natural types (a JSON array of integers is a std::vector<int>, ...) and calls the
// template with those. Results go back as the tagged value tree the server decodes (base.decode).
#ifndef SANDBOX_HPP
#define SANDBOX_HPP

#include <algorithm>
#include <array>
#include <bitset>
#include <cassert>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <queue>
#include <set>
#include <sstream>
#include <stack>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace sandbox {

class Value;
using Array = std::vector<Value>;
using Object = std::map<std::string, Value>;

// Any JSON value. Compares (numbers by value, 1 == 1.0; else by kind first), hashes and prints as JSON.
class Value {
 public:
  enum class Kind { null, boolean, integer, number, string, array, object };

  Value() noexcept;
  Value(std::nullptr_t) noexcept;
  Value(std::nullopt_t) noexcept;
  Value(bool b) noexcept;
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Value(T i) noexcept : Value(static_cast<long long>(i), nullptr) {}
  Value(double d) noexcept;
  Value(const char* s);
  Value(std::string s) noexcept;
  Value(std::string_view s);
  Value(Array a) noexcept;
  Value(Object o) noexcept;

  Kind kind() const noexcept { return kind_; }
  bool is_null() const noexcept { return kind_ == Kind::null; }
  bool is_bool() const noexcept { return kind_ == Kind::boolean; }
  bool is_int() const noexcept { return kind_ == Kind::integer; }
  bool is_number() const noexcept { return kind_ == Kind::integer || kind_ == Kind::number; }
  bool is_string() const noexcept { return kind_ == Kind::string; }
  bool is_array() const noexcept { return kind_ == Kind::array; }
  bool is_object() const noexcept { return kind_ == Kind::object; }

  // The value as a C++ type; std::logic_error when it is of another kind (as_double takes integers too).
  bool as_bool() const;
  long long as_int() const;
  double as_double() const;
  const std::string& as_string() const;
  const Array& as_array() const;
  Array& as_array();
  const Object& as_object() const;
  Object& as_object();

  std::string dump() const;  // JSON text
  std::size_t hash() const noexcept;

  friend bool operator==(const Value& a, const Value& b) noexcept;
  friend bool operator<(const Value& a, const Value& b) noexcept;
  friend bool operator!=(const Value& a, const Value& b) noexcept { return !(a == b); }
  friend bool operator>(const Value& a, const Value& b) noexcept { return b < a; }
  friend bool operator<=(const Value& a, const Value& b) noexcept { return !(b < a); }
  friend bool operator>=(const Value& a, const Value& b) noexcept { return !(a < b); }
  friend std::ostream& operator<<(std::ostream& out, const Value& v);

 private:
  Value(long long i, std::nullptr_t) noexcept;
  Kind kind_ = Kind::null;
  bool bool_ = false;
  long long int_ = 0;
  double double_ = 0;
  std::string string_;
  Array array_;
  Object object_;
};

}  // namespace sandbox

template <>
struct std::hash<sandbox::Value> {
  std::size_t operator()(const sandbox::Value& v) const noexcept { return v.hash(); }
};

namespace sandbox::detail {

// ---- what the harness (harness.cpp) and the generated dispatch file share --------------------------

using Shape = int;  // a name a submission's macros cannot reach (`#define int long long`)
struct Op {
  Shape shape;
  const Array* args;
};
// Defined by the generated dispatch file: call shape `shape` (its function and its arguments' natural
// types) with `args`; run a sequence of ops on the class of ops shape `shape`.
Value dispatch_call(Shape shape, const Array& args);
Value dispatch_ops(Shape shape, const std::vector<Op>& ops);

// A call that could not be made (no such function, arguments of the wrong type): the test's error.
struct CallError : std::exception {
  std::string text;
  explicit CallError(std::string t) : text(std::move(t)) {}
  const char* what() const noexcept override { return text.c_str(); }
};
// The result had more than the harness reports (harness.js's TooLarge).
struct TooLarge : std::exception {};

[[noreturn]] void bad_argument(std::size_t index, const char* wanted, const Value& got);
Value parse_json(std::string_view text);  // std::runtime_error on invalid JSON
std::string type_name(const std::type_info& type);
std::string float_text(double d);

template <class T, template <class...> class Template>
struct is_instance : std::false_type {};
template <template <class...> class Template, class... Args>
struct is_instance<Template<Args...>, Template> : std::true_type {};
template <class T>
struct is_std_array : std::false_type {};
template <class T, std::size_t N>
struct is_std_array<std::array<T, N>> : std::true_type {};

template <class T, class = void>
struct is_map : std::false_type {};
template <class T>
struct is_map<T, std::void_t<typename T::key_type, typename T::mapped_type>> : std::true_type {};
template <class T, class = void>
struct is_set : std::false_type {};
template <class T>
struct is_set<T, std::void_t<typename T::key_type, typename T::key_compare>> : std::bool_constant<!is_map<T>::value> {};
template <class T, class = void>
struct is_unordered_set : std::false_type {};
template <class T>
struct is_unordered_set<T, std::void_t<typename T::key_type, typename T::hasher>> : std::bool_constant<!is_map<T>::value> {};
template <class T, class = void>
struct is_iterable : std::false_type {};
template <class T>
struct is_iterable<T, std::void_t<decltype(std::begin(std::declval<T&>()) != std::end(std::declval<T&>()))>>
    : std::true_type {};
template <class T, class = void>
struct has_push_back : std::false_type {};
template <class T>
struct has_push_back<T, std::void_t<decltype(std::declval<T&>().push_back(std::declval<typename T::value_type>()))>>
    : std::true_type {};

// ---- JSON arguments to C++ values ----------------------------------------------------------------------

// Whether from_json can make a T: an Arg converts only to these, so that a class's copy constructor never
// competes with its real one (`LRUCache(Arg)` must mean `LRUCache(int)`).
template <class T>
constexpr bool convertible();

template <class Tuple, std::size_t... I>
constexpr bool all_convertible(std::index_sequence<I...>) {
  return (convertible<std::tuple_element_t<I, Tuple>>() && ...);
}

template <class T>
constexpr bool convertible() {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, Value> || std::is_arithmetic_v<U> || std::is_same_v<U, std::string> ||
                std::is_same_v<U, std::string_view> || std::is_same_v<U, const char*>) {
    return true;
  } else if constexpr (is_instance<U, std::optional>::value) {
    return convertible<typename U::value_type>();
  } else if constexpr (is_instance<U, std::pair>::value || is_instance<U, std::tuple>::value || is_std_array<U>::value) {
    return all_convertible<U>(std::make_index_sequence<std::tuple_size_v<U>>());
  } else if constexpr (is_map<U>::value) {
    return convertible<typename U::key_type>() && convertible<typename U::mapped_type>();
  } else if constexpr (is_set<U>::value || is_unordered_set<U>::value || has_push_back<U>::value) {
    return convertible<typename U::value_type>();
  } else {
    return false;
  }
}

template <class T>
T from_json(const Value& v, std::size_t index);

template <class Tuple, std::size_t... I>
Tuple tuple_from_json(const Array& items, std::size_t index, std::index_sequence<I...>) {
  return Tuple(from_json<std::tuple_element_t<I, Tuple>>(items[I], index)...);
}

template <class T>
T from_json(const Value& v, std::size_t index) {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, Value>) {
    return v;
  } else if constexpr (std::is_same_v<U, bool>) {
    if (!v.is_bool()) bad_argument(index, "a bool", v);
    return v.as_bool();
  } else if constexpr (std::is_same_v<U, char>) {
    if (!v.is_string() || v.as_string().size() != 1) bad_argument(index, "a char (a one-byte string)", v);
    return v.as_string()[0];
  } else if constexpr (std::is_integral_v<U>) {
    if (!v.is_int()) bad_argument(index, "an integer", v);
    long long i = v.as_int();
    if constexpr (std::is_unsigned_v<U>) {
      if (i < 0 || static_cast<unsigned long long>(i) > std::numeric_limits<U>::max())
        bad_argument(index, "an unsigned integer in range", v);
    } else if (i < static_cast<long long>(std::numeric_limits<U>::min()) ||
               i > static_cast<long long>(std::numeric_limits<U>::max())) {
      bad_argument(index, "an integer in range", v);
    }
    return static_cast<U>(i);
  } else if constexpr (std::is_floating_point_v<U>) {
    if (!v.is_number()) bad_argument(index, "a number", v);
    return static_cast<U>(v.as_double());
  } else if constexpr (std::is_same_v<U, std::string> || std::is_same_v<U, std::string_view>) {
    if (!v.is_string()) bad_argument(index, "a string", v);
    return U(v.as_string());
  } else if constexpr (std::is_same_v<U, const char*>) {
    if (!v.is_string()) bad_argument(index, "a string", v);
    return v.as_string().c_str();
  } else if constexpr (is_instance<U, std::optional>::value) {
    if (v.is_null()) return U();
    return U(from_json<typename U::value_type>(v, index));
  } else if constexpr (is_instance<U, std::pair>::value || is_instance<U, std::tuple>::value || is_std_array<U>::value) {
    constexpr std::size_t n = std::tuple_size_v<U>;
    if (!v.is_array() || v.as_array().size() != n) bad_argument(index, "an array of the tuple's size", v);
    if constexpr (is_std_array<U>::value) {
      U out{};
      for (std::size_t i = 0; i < n; ++i) out[i] = from_json<typename U::value_type>(v.as_array()[i], index);
      return out;
    } else {
      return tuple_from_json<U>(v.as_array(), index, std::make_index_sequence<n>());
    }
  } else if constexpr (is_map<U>::value) {
    if (!v.is_object()) bad_argument(index, "an object", v);
    U out;
    for (const auto& [key, item] : v.as_object())
      out.emplace(from_json<typename U::key_type>(Value(key), index), from_json<typename U::mapped_type>(item, index));
    return out;
  } else if constexpr (is_set<U>::value || is_unordered_set<U>::value) {
    if (!v.is_array()) bad_argument(index, "an array", v);
    U out;
    for (const auto& item : v.as_array()) out.insert(from_json<typename U::value_type>(item, index));
    return out;
  } else if constexpr (has_push_back<U>::value) {
    if (!v.is_array()) bad_argument(index, "an array", v);
    U out;
    if constexpr (std::is_same_v<U, std::vector<typename U::value_type>>) out.reserve(v.as_array().size());
    for (const auto& item : v.as_array()) out.push_back(from_json<typename U::value_type>(item, index));
    return out;
  } else {
    throw CallError("argument " + std::to_string(index + 1) + ": the harness cannot make a " + type_name(typeid(U)) +
                    " from JSON");
  }
}

}  // namespace sandbox::detail

// An argument as the harness passes it: converts to the parameter type the function declares. In a
// namespace of its own, so that argument-dependent lookup of a submission's function finds nothing here.
namespace sandbox_args {
class Arg {
 public:
  Arg(const sandbox::Value& v, std::size_t index) : value_(&v), index_(index) {}
  template <class T, std::enable_if_t<sandbox::detail::convertible<T>(), int> = 0>
  operator T() const {
    return sandbox::detail::from_json<T>(*value_, index_);
  }

 private:
  const sandbox::Value* value_;
  std::size_t index_;
};
}  // namespace sandbox_args

namespace sandbox::detail {

// ---- C++ results to the tagged value tree -----------------------------------------------------------

constexpr int MAX_DEPTH = 64;
struct Budget {
  long left = 32768;  // harness.js's MAX_ITEMS
};

Value tagged(const char* tag);
Value tagged(const char* tag, Value item);
Value encode_value(const Value& v, int depth, Budget& budget);

template <class T>
Value encode(const T& x, int depth, Budget& budget);

template <class Tuple, std::size_t... I>
Value encode_tuple(const Tuple& t, int depth, Budget& budget, std::index_sequence<I...>) {
  Array items;
  (items.push_back(encode(std::get<I>(t), depth + 1, budget)), ...);
  return tagged("list", Value(std::move(items)));
}

template <class T>
Value encode(const T& x, int depth, Budget& budget) {
  using U = std::remove_cv_t<std::remove_reference_t<T>>;
  if (--budget.left < 0) throw TooLarge();
  if (depth > MAX_DEPTH) return tagged("other", Value("too deeply nested"));
  if constexpr (std::is_same_v<U, Value>) {
    return encode_value(x, depth, budget);
  } else if constexpr (std::is_same_v<U, bool>) {
    return tagged("bool", Value(x));
  } else if constexpr (std::is_same_v<U, char>) {
    return tagged("str", Value(std::string(1, x)));
  } else if constexpr (std::is_integral_v<U>) {
    return tagged("int", Value(std::to_string(x)));
  } else if constexpr (std::is_floating_point_v<U>) {
    return tagged("float", Value(float_text(static_cast<double>(x))));
  } else if constexpr (std::is_convertible_v<const U&, std::string_view> && !std::is_null_pointer_v<U>) {
    if constexpr (std::is_pointer_v<U>) {
      if (x == nullptr) return tagged("none");
    }
    return tagged("str", Value(std::string_view(x)));
  } else if constexpr (std::is_null_pointer_v<U> || std::is_same_v<U, std::nullopt_t> ||
                       std::is_same_v<U, std::monostate>) {
    return tagged("none");
  } else if constexpr (is_instance<U, std::optional>::value) {
    return x ? encode(*x, depth, budget) : tagged("none");
  } else if constexpr (is_instance<U, std::unique_ptr>::value || is_instance<U, std::shared_ptr>::value) {
    return x ? encode(*x, depth, budget) : tagged("none");
  } else if constexpr (is_instance<U, std::variant>::value) {
    return std::visit([&](const auto& item) { return encode(item, depth, budget); }, x);
  } else if constexpr (is_instance<U, std::pair>::value || is_instance<U, std::tuple>::value) {
    return encode_tuple(x, depth, budget, std::make_index_sequence<std::tuple_size_v<U>>());
  } else if constexpr (is_map<U>::value) {
    Array pairs;
    for (const auto& [key, item] : x) {
      pairs.push_back(Value(Array{encode(key, depth + 1, budget), encode(item, depth + 1, budget)}));
    }
    return tagged("dict", Value(std::move(pairs)));
  } else if constexpr (is_iterable<const U>::value) {
    Array items;
    for (const auto& item : x) items.push_back(encode(item, depth + 1, budget));
    return tagged(is_set<U>::value || is_unordered_set<U>::value ? "set" : "list", Value(std::move(items)));
  } else if constexpr (is_iterable<U>::value) {  // iterable only when not const (a submission's own class)
    Array items;
    for (const auto& item : const_cast<U&>(x)) items.push_back(encode(item, depth + 1, budget));
    return tagged("list", Value(std::move(items)));
  } else {
    return tagged("other", Value("a " + type_name(typeid(U))));
  }
}

template <class T>
Value result(const T& x) {
  Budget budget;
  return encode(x, 0, budget);
}

// ---- calling a submission's function, method or constructor -------------------------------------------

template <class F, std::size_t... I>
decltype(auto) call_with_args(F& f, const Array& args, std::index_sequence<I...>) {
  return f(sandbox_args::Arg(args[I], I)...);
}

template <class F, class Tuple, std::size_t... I>
decltype(auto) call_with_natural(F& f, Tuple& natural, std::index_sequence<I...>) {
  return f(std::get<I>(natural)...);
}

template <class F, class... Args>
Value encode_call(F&& call) {
  if constexpr (std::is_void_v<decltype(call())>) {
    call();
    return tagged("none");
  } else {
    return result(call());
  }
}

template <class T, class... Ts>
constexpr bool same_as_first() {
  return (std::is_same_v<T, Ts> && ...);
}
template <class... Ts>
constexpr bool all_same() {  // and more than one
  if constexpr (sizeof...(Ts) < 2) {
    return false;
  } else {
    return same_as_first<Ts...>();
  }
}

// The arguments as their natural types: a std::array when they all have one type (a variadic function
// called with 300 vectors compiles in a fraction of the time a 300-element std::tuple takes), else a tuple.
template <class... Ts, std::size_t... I>
auto natural_args(const Array& args, std::index_sequence<I...>) {
  if constexpr (all_same<Ts...>()) {
    using T = std::tuple_element_t<0, std::tuple<Ts...>>;
    std::array<T, sizeof...(Ts)> out;
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = from_json<T>(args[i], i);
    return out;
  } else {
    return std::tuple<Ts...>(from_json<Ts>(args[I], I)...);
  }
}

template <std::size_t N>
using ArgsOf = std::make_index_sequence<N>;

template <std::size_t N, class = ArgsOf<N>>
struct arity;
template <std::size_t N, std::size_t... I>
struct arity<N, std::index_sequence<I...>> {
  template <std::size_t>
  using arg = sandbox_args::Arg;
  template <class F>
  static constexpr bool invocable = std::is_invocable_v<F&, arg<I>...>;
  template <class C>
  static constexpr bool constructs = std::is_constructible_v<C, arg<I>...>;
};

// `f(args...)` with the arguments' natural types `Ts` when the function takes them (function templates,
// which cannot deduce from an Arg; plain functions whose parameters are those types), else with Arg
// arguments, which convert to whatever the parameters are; a CallError when neither can be called.
template <class... Ts, class F>
Value call(F f, const Array& args, const char* name) {
  constexpr std::size_t n = sizeof...(Ts);
  if (args.size() != n) throw CallError("the harness was sent a call of the wrong shape");
  if constexpr (std::is_invocable_v<F&, Ts&...>) {
    auto natural = natural_args<Ts...>(args, ArgsOf<n>());
    return encode_call([&]() -> decltype(auto) { return call_with_natural(f, natural, ArgsOf<n>()); });
  } else if constexpr (arity<n>::template invocable<F>) {
    return encode_call([&]() -> decltype(auto) { return call_with_args(f, args, ArgsOf<n>()); });
  } else {
    throw CallError(std::string(name) + " is not defined as a function taking " + std::to_string(n) +
                    (n == 1 ? " argument" : " arguments") + " of these types");
  }
}

template <class C, class... Ts>
Value construct(std::optional<C>& object, const Array& args, const char* name) {
  constexpr std::size_t n = sizeof...(Ts);
  if (args.size() != n) throw CallError("the harness was sent a call of the wrong shape");
  auto make = [&](auto&&... a) { object.emplace(std::forward<decltype(a)>(a)...); };
  if constexpr (std::is_constructible_v<C, Ts&...>) {
    auto natural = natural_args<Ts...>(args, ArgsOf<n>());
    call_with_natural(make, natural, ArgsOf<n>());
  } else if constexpr (arity<n>::template constructs<C>) {
    call_with_args(make, args, ArgsOf<n>());
  } else {
    throw CallError(std::string(name) + " has no constructor taking " + std::to_string(n) +
                    (n == 1 ? " argument" : " arguments") + " of these types");
  }
  return tagged("none");
}

template <class M, class C>
struct Bound {  // a method lambda `m(object, args...)` as a callable of the arguments alone
  M& m;
  C& object;
  template <class... A>
  auto operator()(A&&... a) -> decltype(m(object, std::forward<A>(a)...)) {
    return m(object, std::forward<A>(a)...);
  }
};

template <class C>
C& instance(std::optional<C>& object);

template <class... Ts, class M, class C>
Value call_method(M& m, std::optional<C>& object, const Array& args, const char* name) {
  return call<Ts...>(Bound<M, C>{m, instance(object)}, args, name);
}

template <class C>
C& instance(std::optional<C>& object) {
  if (!object) throw CallError("the object was not constructed");
  return *object;
}

template <class C>
Value iterate(std::optional<C>& object) {
  C& o = instance(object);
  if constexpr (is_iterable<C>::value) {
    Budget budget;
    Array items;
    for (auto&& item : o) {
      items.push_back(encode(item, 1, budget));
      if (--budget.left < 0) throw TooLarge();
    }
    return tagged("list", Value(std::move(items)));
  } else {
    throw CallError("the class cannot be iterated (it has no begin() and end())");
  }
}

}  // namespace sandbox::detail


// Compiled once, in value.o (which defines SANDBOX_EXTERN empty): the conversions most submissions use are
// not instantiated again in every compile. (Instantiating the common containers there too saved nothing
// measurable per compile and cost 6 s of CPU in the prepare step.)
#ifndef SANDBOX_EXTERN
#define SANDBOX_EXTERN extern
#endif
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<int>(const int&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template int sandbox::detail::from_json<int>(const sandbox::Value&, std::size_t);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<long long>(const long long&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template long long sandbox::detail::from_json<long long>(const sandbox::Value&, std::size_t);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<bool>(const bool&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template bool sandbox::detail::from_json<bool>(const sandbox::Value&, std::size_t);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<double>(const double&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template double sandbox::detail::from_json<double>(const sandbox::Value&, std::size_t);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<char>(const char&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template char sandbox::detail::from_json<char>(const sandbox::Value&, std::size_t);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<std::string>(const std::string&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template std::string sandbox::detail::from_json<std::string>(const sandbox::Value&, std::size_t);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<sandbox::Value>(const sandbox::Value&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::from_json<sandbox::Value>(const sandbox::Value&, std::size_t);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<std::vector<int>>(const std::vector<int>&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template std::vector<int> sandbox::detail::from_json<std::vector<int>>(const sandbox::Value&, std::size_t);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<std::vector<long long>>(const std::vector<long long>&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template std::vector<long long> sandbox::detail::from_json<std::vector<long long>>(const sandbox::Value&, std::size_t);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<std::vector<double>>(const std::vector<double>&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template std::vector<double> sandbox::detail::from_json<std::vector<double>>(const sandbox::Value&, std::size_t);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<std::vector<std::string>>(const std::vector<std::string>&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template std::vector<std::string> sandbox::detail::from_json<std::vector<std::string>>(const sandbox::Value&, std::size_t);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<std::vector<std::vector<int>>>(const std::vector<std::vector<int>>&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template std::vector<std::vector<int>> sandbox::detail::from_json<std::vector<std::vector<int>>>(const sandbox::Value&, std::size_t);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<std::vector<std::vector<std::string>>>(const std::vector<std::vector<std::string>>&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template std::vector<std::vector<std::string>> sandbox::detail::from_json<std::vector<std::vector<std::string>>>(const sandbox::Value&, std::size_t);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<std::vector<sandbox::Value>>(const std::vector<sandbox::Value>&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template std::vector<sandbox::Value> sandbox::detail::from_json<std::vector<sandbox::Value>>(const sandbox::Value&, std::size_t);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<std::optional<int>>(const std::optional<int>&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template std::optional<int> sandbox::detail::from_json<std::optional<int>>(const sandbox::Value&, std::size_t);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<std::optional<std::string>>(const std::optional<std::string>&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template std::optional<std::string> sandbox::detail::from_json<std::optional<std::string>>(const sandbox::Value&, std::size_t);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<std::map<std::string, int>>(const std::map<std::string, int>&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template std::map<std::string, int> sandbox::detail::from_json<std::map<std::string, int>>(const sandbox::Value&, std::size_t);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<std::unordered_map<std::string, int>>(const std::unordered_map<std::string, int>&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template std::unordered_map<std::string, int> sandbox::detail::from_json<std::unordered_map<std::string, int>>(const sandbox::Value&, std::size_t);
SANDBOX_EXTERN template sandbox::Value sandbox::detail::encode<std::map<std::string, std::string>>(const std::map<std::string, std::string>&, int, sandbox::detail::Budget&);
SANDBOX_EXTERN template std::map<std::string, std::string> sandbox::detail::from_json<std::map<std::string, std::string>>(const sandbox::Value&, std::size_t);

#endif
