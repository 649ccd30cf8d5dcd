// The C++ grading harness: the trusted program that runs *inside* the sandbox (never on the server).
//
// Built once per toolchain version into an object file that every graded program links with; the
// submission (solution.cpp) is compiled in the generated dispatch file (dispatch.cpp, from cpp/dispatch.py),
// which `#include`s it, so compiler errors name solution.cpp's own lines.
//
// The protocol is harness.js's (read its header): the job on stdin, {"tests": [{"function", "args", "shape"}
// | {"ops", "shapes"} | {"stdin"}], "output_cap", "test_timeout_ms"}, where "shape"/"shapes" pick the
// dispatch file's call site for each call or op; events on `--results-fd N`, one JSON object per line:
// started, begin, output, call, program, done. The job never holds an expected value.
//
// Every call (or sequence of ops) and every program test runs in a forked child of this process, in a
// process group of its own, with stdout and stderr on pipes: a crash (segfault, abort) or an endless loop
// costs that test, not the run, and each test's output is its own. The parent enforces the per-test time
// limit and kills the child's group. What a child reports travels over a pipe as JSON that the parent
// parses again, so a submission cannot break the event stream's framing (and could only ever claim
// values: the server compares them).
#include <cxxabi.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SANDBOX_EXTERN  // the explicit instantiations that sandbox.hpp declares extern
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

// ---- the harness ---------------------------------------------------------------------------------------

int results_fd = 3;
std::size_t output_cap = 65536;
int test_timeout_ms = 5000;

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void emit(const Object& event) { write_all(results_fd, Value(event).dump() + "\n"); }

double now_ms() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000.0 + t.tv_nsec / 1e6;
}

std::string describe_signal(int sig) {
  std::string text = "crashed: ";
  const char* name = strsignal(sig);
  text += name ? name : ("signal " + std::to_string(sig)).c_str();
  if (sig == SIGSEGV) text += " (an invalid memory access, or a stack overflow from too deep a recursion)";
  if (sig == SIGFPE) text += " (an integer division by zero?)";
  return text;
}

// What the current exception says: its message, and its type when it is the standard library's own (a
// submission's own class is not named as the failure kind: its name could carry a hidden test's data).
Object describe_current_exception() {
  Object out;
  std::string type;
  if (auto* t = abi::__cxa_current_exception_type()) type = detail::type_name(*t);
  try {
    throw;
  } catch (const detail::CallError& e) {
    out["error"] = Value(e.what());
    out["exception"] = Value();
    return out;
  } catch (const detail::TooLarge&) {
    out["error"] = Value("the returned value is too large to compare");
    out["exception"] = Value();
    return out;
  } catch (const std::exception& e) {
    std::string what = e.what();
    out["error"] = Value(what.empty() || what == type ? type : type + ": " + what);
  } catch (...) {
    out["error"] = Value("threw a value of type " + (type.empty() ? std::string("unknown") : type));
  }
  out["exception"] = type.rfind("std::", 0) == 0 ? Value(type) : Value();
  return out;
}

struct Child {
  std::string stdout_text, stderr_text, result;
  bool timed_out = false, truncated = false;
  int status = 0;  // waitpid's
  double ms = 0;
};

// Fork `body` in a process group of its own, feed it `input` (when `feed`), collect its stdout, stderr and
// what it writes on its result pipe (descriptor given to `body`) within the per-test time limit.
template <class Body>
Child run_child(Body body, bool feed, const std::string& input, bool stop_at_cap) {
  Child out;
  int out_pipe[2], err_pipe[2], res_pipe[2], in_pipe[2] = {-1, -1};
  if (pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC) || pipe2(res_pipe, O_CLOEXEC) ||
      (feed && pipe2(in_pipe, O_CLOEXEC))) {
    out.result = "";
    out.status = -1;
    return out;
  }
  double started = now_ms();
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    if (feed) {
      dup2(in_pipe[0], 0);
    } else {
      int null = open("/dev/null", O_RDONLY);
      if (null >= 0) dup2(null, 0);
    }
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    close(results_fd);
    body(res_pipe[1]);
    _exit(0);
  }
  if (pid > 0) setpgid(pid, pid);
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(res_pipe[1]);
  if (feed) close(in_pipe[0]);
  int in_fd = feed ? in_pipe[1] : -1;
  if (in_fd >= 0) {
    fcntl(in_fd, F_SETFL, O_NONBLOCK);
    if (input.empty()) {
      close(in_fd);
      in_fd = -1;
    }
  }
  std::size_t written = 0;
  int fds[3] = {out_pipe[0], err_pipe[0], res_pipe[0]};
  std::string* sinks[3] = {&out.stdout_text, &out.stderr_text, &out.result};
  bool open_fd[3] = {true, true, true};
  const std::size_t result_cap = 64 * 1024 * 1024;
  double deadline = started + test_timeout_ms;
  bool reaped = false;
  char buf[65536];
  while (pid > 0 && (open_fd[0] || open_fd[1] || open_fd[2])) {
    double left = deadline - now_ms();
    if (left <= 0) {
      out.timed_out = true;
      break;
    }
    pollfd p[4];
    int n = 0, which[4];
    for (int k = 0; k < 3; ++k) {
      if (open_fd[k]) {
        p[n] = {fds[k], POLLIN, 0};
        which[n++] = k;
      }
    }
    if (in_fd >= 0) {
      p[n] = {in_fd, POLLOUT, 0};
      which[n++] = 3;
    }
    int ready = poll(p, static_cast<nfds_t>(n), static_cast<int>(left) + 1);
    if (ready < 0 && errno != EINTR) break;
    for (int k = 0; k < n && ready > 0; ++k) {
      if (!p[k].revents) continue;
      if (which[k] == 3) {
        ssize_t w = ::write(in_fd, input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        if (w < 0 && errno != EAGAIN && errno != EINTR) written = input.size();  // the program closed its stdin
        if (written >= input.size()) {
          close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      int s = which[k];
      ssize_t got = ::read(fds[s], buf, sizeof buf);
      if (got <= 0) {
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        open_fd[s] = false;
        continue;
      }
      std::string& sink = *sinks[s];
      std::size_t cap = s == 2 ? result_cap : output_cap;
      std::size_t room = sink.size() < cap ? cap - sink.size() : 0;
      sink.append(buf, std::min(room, static_cast<std::size_t>(got)));
      if (static_cast<std::size_t>(got) > room && (s == 2 || (s == 0 && stop_at_cap))) {
        out.truncated = true;
        open_fd[0] = open_fd[1] = open_fd[2] = false;  // stop: the child is killed below
      }
    }
  }
  // Every pipe closed: the child is exiting (or handed them on). Give it until the deadline to be gone.
  while (pid > 0 && !out.timed_out && !out.truncated) {
    pid_t done = waitpid(pid, &out.status, WNOHANG);
    if (done == pid) {
      reaped = true;
      break;
    }
    if (now_ms() >= deadline) {
      out.timed_out = true;
      break;
    }
    usleep(500);
  }
  if (pid > 0) {
    kill(-pid, SIGKILL);  // and whatever it started
    if (!reaped) {
      kill(pid, SIGKILL);
      waitpid(pid, &out.status, 0);
    }
  }
  for (int fd : fds) close(fd);
  if (in_fd >= 0) close(in_fd);
  out.ms = now_ms() - started;
  return out;
}

void flush_student_streams() {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
}

void emit_output(const Value& test, const std::string& out, const std::string& err) {
  emit({{"event", Value("output")}, {"test", test}, {"stdout", Value(out)}, {"stderr", Value(err)}});
}

// One call (or sequence of ops) in a child; returns false when it timed out (the rest is not run).
bool run_call(long long index, const Value& test) {
  emit({{"event", Value("begin")}, {"index", Value(index)}});
  const Object& t = test.as_object();
  auto body = [&](int result_fd) {
    Object reply;
    try {
      Value value;
      if (t.count("ops")) {
        const Array& ops = t.at("ops").as_array();
        const Array& shapes = t.at("shapes").as_array();
        if (ops.empty() || shapes.size() != ops.size()) throw detail::CallError("the harness was sent invalid ops");
        std::vector<detail::Op> list;
        for (std::size_t k = 0; k < ops.size(); ++k) {
          list.push_back({static_cast<int>(shapes[k].as_int()), &ops[k].as_array().at(1).as_array()});
        }
        value = detail::dispatch_ops(static_cast<int>(t.at("shape").as_int()), list);
      } else {
        value = detail::dispatch_call(static_cast<int>(t.at("shape").as_int()), t.at("args").as_array());
      }
      reply["value"] = std::move(value);
    } catch (...) {
      reply = describe_current_exception();
    }
    flush_student_streams();
    write_all(result_fd, Value(std::move(reply)).dump());
  };
  Child child = run_child(body, false, "", false);
  Object event{{"event", Value("call")}, {"index", Value(index)}, {"value", Value()}, {"error", Value()},
               {"exception", Value()}, {"ms", Value(child.ms)}};
  if (child.timed_out) {
    event["error"] = Value("timed out");
  } else if (child.truncated) {
    event["error"] = Value("the returned value is too large to compare");
  } else if (!child.result.empty()) {
    try {
      Value reply = Parser(child.result).parse();
      for (const char* key : {"value", "error", "exception"}) {
        if (reply.as_object().count(key)) event[key] = reply.as_object().at(key);
      }
    } catch (const std::exception&) {
      event["error"] = Value("the harness could not read the result");
    }
  } else if (WIFSIGNALED(child.status)) {
    event["error"] = Value(describe_signal(WTERMSIG(child.status)));
  } else {
    int code = WIFEXITED(child.status) ? WEXITSTATUS(child.status) : -1;
    event["error"] = Value("the program exited (status " + std::to_string(code) + ") before the call returned");
  }
  if (!child.stdout_text.empty() || !child.stderr_text.empty()) emit_output(Value(index), child.stdout_text, child.stderr_text);
  emit(event);
  return !child.timed_out;
}

void run_program(long long index, const std::string& input) {
  emit({{"event", Value("begin")}, {"index", Value(index)}});
  auto body = [&](int result_fd) {
    int code = 1;
    try {
      code = detail::run_main();
    } catch (...) {
      Object about = describe_current_exception();
      flush_student_streams();
      write_all(result_fd, about["error"].as_string());
      std::_Exit(1);
    }
    flush_student_streams();
    std::exit(code);
  };
  Child child = run_child(body, true, input, true);
  Value error;
  if (child.timed_out) {
    error = Value("timed out");
  } else if (child.truncated) {
    error = Value("output limit exceeded");
  } else if (!child.result.empty()) {
    error = Value(child.result.substr(0, 300));
  } else if (WIFSIGNALED(child.status)) {
    error = Value(describe_signal(WTERMSIG(child.status)));
  } else if (WIFEXITED(child.status) && WEXITSTATUS(child.status) != 0) {
    error = Value("exited with status " + std::to_string(WEXITSTATUS(child.status)));
  }
  emit({{"event", Value("program")}, {"index", Value(index)}, {"stdout", Value(child.stdout_text)},
        {"error", error}, {"truncated", Value(child.truncated)}, {"ms", Value(child.ms)}});
  emit_output(Value(index), child.stdout_text, child.stderr_text);
}

std::string read_stdin() {
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return text;
    text.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace
}  // namespace sandbox

int main(int argc, char** argv) {
  using sandbox::Value;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--results-fd") sandbox::results_fd = std::atoi(argv[i + 1]);
  }
  signal(SIGPIPE, SIG_IGN);
  sandbox::flush_student_streams();  // what the submission's static initializers printed is not a test's
  Value job = sandbox::Parser(sandbox::read_stdin()).parse();
  const auto& settings = job.as_object();
  if (settings.count("output_cap")) sandbox::output_cap = static_cast<std::size_t>(settings.at("output_cap").as_int());
  if (settings.count("test_timeout_ms")) sandbox::test_timeout_ms = static_cast<int>(settings.at("test_timeout_ms").as_int());
  sandbox::emit({{"event", Value("started")}});
  const sandbox::Array& tests = settings.at("tests").as_array();
  for (std::size_t i = 0; i < tests.size(); ++i) {
    if (tests[i].as_object().count("stdin")) continue;
    if (!sandbox::run_call(static_cast<long long>(i), tests[i])) break;  // the rest would most likely loop too
  }
  for (std::size_t i = 0; i < tests.size(); ++i) {
    const auto& t = tests[i].as_object();
    if (t.count("stdin")) sandbox::run_program(static_cast<long long>(i), t.at("stdin").as_string());
  }
  sandbox::emit({{"event", Value("done")}});
  return 0;
}
