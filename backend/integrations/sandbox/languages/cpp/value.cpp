// The C++ harness's JSON: sandbox::Value, parsing and writing JSON text, and the tagged value tree of
// results. Compiled once per toolchain version (build.sh prepare) and linked into both programs of a run:
// the parent harness (parent.cpp) and each test's child (child.cpp with the submission). It also holds the
// explicit instantiations that sandbox.hpp declares extern.
#include <cxxabi.h>

#define SANDBOX_EXTERN  // defines the explicit instantiations that sandbox.hpp declares extern
#include "sandbox.hpp"

namespace sandbox {

Value::Value() noexcept = default;
Value::Value(std::nullptr_t) noexcept {}
Value::Value(std::nullopt_t) noexcept {}
Value::Value(bool b) noexcept : kind_(Kind::boolean), bool_(b) {}
Value::Value(long long i, std::nullptr_t) noexcept : kind_(Kind::integer), int_(i) {}
Value::Value(double d) noexcept : kind_(Kind::number), double_(d) {}
Value::Value(const char* s) : kind_(Kind::string), string_(s ? s : "") {}
Value::Value(std::string s) noexcept : kind_(Kind::string), string_(std::move(s)) {}
Value::Value(std::string_view s) : kind_(Kind::string), string_(s) {}
Value::Value(Array a) noexcept : kind_(Kind::array), array_(std::move(a)) {}
Value::Value(Object o) noexcept : kind_(Kind::object), object_(std::move(o)) {}

namespace {
const char* kind_name(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::null: return "null";
    case Value::Kind::boolean: return "a bool";
    case Value::Kind::integer: return "an integer";
    case Value::Kind::number: return "a number";
    case Value::Kind::string: return "a string";
    case Value::Kind::array: return "an array";
    case Value::Kind::object: return "an object";
  }
  return "a value";
}

[[noreturn]] void wrong_kind(const Value& v, const char* wanted) {
  throw std::logic_error(std::string("sandbox::Value is ") + kind_name(v.kind()) + ", not " + wanted);
}
}  // namespace

bool Value::as_bool() const {
  if (!is_bool()) wrong_kind(*this, "a bool");
  return bool_;
}
long long Value::as_int() const {
  if (!is_int()) wrong_kind(*this, "an integer");
  return int_;
}
double Value::as_double() const {
  if (!is_number()) wrong_kind(*this, "a number");
  return is_int() ? static_cast<double>(int_) : double_;
}
const std::string& Value::as_string() const {
  if (!is_string()) wrong_kind(*this, "a string");
  return string_;
}
const Array& Value::as_array() const {
  if (!is_array()) wrong_kind(*this, "an array");
  return array_;
}
Array& Value::as_array() {
  if (!is_array()) wrong_kind(*this, "an array");
  return array_;
}
const Object& Value::as_object() const {
  if (!is_object()) wrong_kind(*this, "an object");
  return object_;
}
Object& Value::as_object() {
  if (!is_object()) wrong_kind(*this, "an object");
  return object_;
}

namespace {
int rank(Value::Kind kind) {  // numbers compare with each other
  return kind == Value::Kind::number ? static_cast<int>(Value::Kind::integer) : static_cast<int>(kind);
}
}  // namespace

bool operator==(const Value& a, const Value& b) noexcept {
  if (a.is_number() && b.is_number()) {
    if (a.is_int() && b.is_int()) return a.int_ == b.int_;
    return a.as_double() == b.as_double();
  }
  if (a.kind_ != b.kind_) return false;
  switch (a.kind_) {
    case Value::Kind::null: return true;
    case Value::Kind::boolean: return a.bool_ == b.bool_;
    case Value::Kind::string: return a.string_ == b.string_;
    case Value::Kind::array: return a.array_ == b.array_;
    case Value::Kind::object: return a.object_ == b.object_;
    default: return false;
  }
}

bool operator<(const Value& a, const Value& b) noexcept {
  if (rank(a.kind_) != rank(b.kind_)) return rank(a.kind_) < rank(b.kind_);
  switch (a.kind_) {
    case Value::Kind::null: return false;
    case Value::Kind::boolean: return a.bool_ < b.bool_;
    case Value::Kind::integer:
    case Value::Kind::number:
      if (a.is_int() && b.is_int()) return a.int_ < b.int_;
      return a.as_double() < b.as_double();
    case Value::Kind::string: return a.string_ < b.string_;
    case Value::Kind::array: return a.array_ < b.array_;
    case Value::Kind::object: return a.object_ < b.object_;
  }
  return false;
}

std::size_t Value::hash() const noexcept {
  std::size_t h = static_cast<std::size_t>(rank(kind_)) * 0x9e3779b97f4a7c15ULL;
  auto mix = [&](std::size_t x) { h ^= x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  switch (kind_) {
    case Kind::null: break;
    case Kind::boolean: mix(bool_); break;
    case Kind::integer: mix(std::hash<double>()(static_cast<double>(int_))); break;
    case Kind::number: mix(std::hash<double>()(double_)); break;
    case Kind::string: mix(std::hash<std::string>()(string_)); break;
    case Kind::array:
      for (const auto& item : array_) mix(item.hash());
      break;
    case Kind::object:
      for (const auto& [key, item] : object_) {
        mix(std::hash<std::string>()(key));
        mix(item.hash());
      }
      break;
  }
  return h;
}

namespace {

// JSON text of a string: valid UTF-8 whatever the bytes (an invalid sequence becomes U+FFFD).
void quote(std::string& out, std::string_view s) {
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c < 0x20 || c == 0x7f) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    std::size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (std::size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    if (ok && n == 3) {
      auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);  // overlong, surrogates
    } else if (ok && n == 4) {
      auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
    }
    if (ok) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  out += '"';
}

void dump_to(std::string& out, const Value& v) {
  switch (v.kind()) {
    case Value::Kind::null: out += "null"; break;
    case Value::Kind::boolean: out += v.as_bool() ? "true" : "false"; break;
    case Value::Kind::integer: out += std::to_string(v.as_int()); break;
    case Value::Kind::number: {
      double d = v.as_double();
      if (std::isfinite(d)) {
        out += detail::float_text(d);
      } else {
        out += "null";
      }
      break;
    }
    case Value::Kind::string: quote(out, v.as_string()); break;
    case Value::Kind::array: {
      out += '[';
      bool first = true;
      for (const auto& item : v.as_array()) {
        if (!first) out += ", ";
        first = false;
        dump_to(out, item);
      }
      out += ']';
      break;
    }
    case Value::Kind::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, item] : v.as_object()) {
        if (!first) out += ", ";
        first = false;
        quote(out, key);
        out += ": ";
        dump_to(out, item);
      }
      out += '}';
      break;
    }
  }
}

}  // namespace

std::string Value::dump() const {
  std::string out;
  dump_to(out, *this);
  return out;
}

std::ostream& operator<<(std::ostream& out, const Value& v) { return out << v.dump(); }

namespace detail {

[[noreturn]] void bad_argument(std::size_t index, const char* wanted, const Value& got) {
  throw CallError("argument " + std::to_string(index + 1) + ": expected " + wanted + ", got " +
                  kind_name(got.kind()));
}

std::string type_name(const std::type_info& type) {
  int status = 0;
  char* name = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  std::string out = status == 0 && name ? name : type.name();
  std::free(name);
  // The standard library's inline namespaces say nothing to a student.
  for (const char* noise : {"std::__cxx11::", "std::__1::"}) {
    for (std::size_t at; (at = out.find(noise)) != std::string::npos;) out.replace(at, std::strlen(noise), "std::");
  }
  return out;
}

std::string float_text(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[40];
  for (int precision = 15; precision <= 17; ++precision) {  // the shortest text that reads back the same
    std::snprintf(buf, sizeof buf, "%.*g", precision, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string out = buf;
  if (out.find_first_of(".en") == std::string::npos) out += ".0";
  return out;
}

Value tagged(const char* tag) { return Value(Array{Value(tag)}); }
Value tagged(const char* tag, Value item) { return Value(Array{Value(tag), std::move(item)}); }

Value encode_value(const Value& v, int depth, Budget& budget) {
  switch (v.kind()) {
    case Value::Kind::null: return tagged("none");
    case Value::Kind::boolean: return tagged("bool", v);
    case Value::Kind::integer: return tagged("int", Value(std::to_string(v.as_int())));
    case Value::Kind::number: return tagged("float", Value(float_text(v.as_double())));
    case Value::Kind::string: return tagged("str", v);
    case Value::Kind::array: {
      Array items;
      for (const auto& item : v.as_array()) items.push_back(encode(item, depth + 1, budget));
      return tagged("list", Value(std::move(items)));
    }
    case Value::Kind::object: {
      Array pairs;
      for (const auto& [key, item] : v.as_object()) {
        pairs.push_back(Value(Array{tagged("str", Value(key)), encode(item, depth + 1, budget)}));
      }
      return tagged("dict", Value(std::move(pairs)));
    }
  }
  return tagged("none");
}

}  // namespace detail

// ---- JSON text to Value ------------------------------------------------------------------------------

namespace {

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Value parse() {
    Value v = value(0);
    space();
    if (i_ != s_.size()) fail();
    return v;
  }

 private:
  [[noreturn]] void fail() { throw std::runtime_error("invalid JSON"); }
  void space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  bool take(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  Value value(int depth) {
    if (depth > 200) fail();
    space();
    if (i_ >= s_.size()) fail();
    char c = s_[i_];
    if (c == '{') {
      ++i_;
      Object o;
      space();
      if (take("}")) return Value(std::move(o));
      for (;;) {
        space();
        std::string key = string();
        space();
        if (!take(":")) fail();
        o[std::move(key)] = value(depth + 1);
        space();
        if (take("}")) return Value(std::move(o));
        if (!take(",")) fail();
      }
    }
    if (c == '[') {
      ++i_;
      Array a;
      space();
      if (take("]")) return Value(std::move(a));
      for (;;) {
        a.push_back(value(depth + 1));
        space();
        if (take("]")) return Value(std::move(a));
        if (!take(",")) fail();
      }
    }
    if (c == '"') return Value(string());
    if (take("null")) return Value();
    if (take("true")) return Value(true);
    if (take("false")) return Value(false);
    return number();
  }

  Value number() {
    std::size_t start = i_;
    bool integral = true;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    while (i_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[i_])) || std::strchr(".eE+-", s_[i_]))) {
      if (!std::isdigit(static_cast<unsigned char>(s_[i_]))) integral = false;
      ++i_;
    }
    std::string text(s_.substr(start, i_ - start));
    if (text.empty() || text == "-") fail();
    if (integral) {
      errno = 0;
      long long n = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == 0) return Value(n);
    }
    char* end = nullptr;
    double d = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) fail();
    return Value(d);
  }

  unsigned hex4() {
    if (i_ + 4 > s_.size()) fail();
    unsigned code = 0;
    for (int k = 0; k < 4; ++k) {
      char h = s_[i_++];
      code <<= 4;
      if (h >= '0' && h <= '9') code |= h - '0';
      else if (h >= 'a' && h <= 'f') code |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') code |= h - 'A' + 10;
      else fail();
    }
    return code;
  }

  static void utf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xc0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3f));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xe0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (code & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (code & 0x3f));
    }
  }

  std::string string() {
    if (!take("\"")) fail();
    std::string out;
    for (;;) {
      if (i_ >= s_.size()) fail();
      char c = s_[i_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail();
      char e = s_[i_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u': {
          unsigned code = hex4();
          if (code >= 0xd800 && code < 0xdc00 && take("\\u")) {
            unsigned low = hex4();
            code = low >= 0xdc00 && low < 0xe000 ? 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00) : 0xfffd;
          } else if (code >= 0xd800 && code < 0xe000) {
            code = 0xfffd;
          }
          utf8(out, code);
          break;
        }
        default: out += e;
      }
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

Value detail::parse_json(std::string_view text) { return Parser(text).parse(); }

}  // namespace sandbox
