// The child side of the C++ harness: `program call` or `program program`, exec'd by the parent harness
// (parent.cpp) once per test, linked after the dispatch file and the submission it #includes. A fresh
// exec: this process holds its own test only, never the parent's job (with every hidden test) nor the
// channel the results go to.
//
// The submission keeps its own `main` (a real one: falling off its end returns 0); the harness starts from
// a constructor, which runs after the submission's static initializers (this object is linked last).
// `call`: reads its test ({"function", "args", "shape"} or {"ops", "shapes", "shape"}) on descriptor 3,
// calls the submission through the dispatch file, writes {"value"} or {"error", "exception"} on
// descriptor 4 after flushing what the submission printed, and exits: main never runs. `program`: returns,
// and the submission's main runs with the test's stdin; an exception escaping it is written on descriptor 4
// as "<type>: <what>".
#include <cxxabi.h>
#include <unistd.h>

#include <cerrno>
#include <exception>

#include "sandbox.hpp"

namespace {

constexpr int TEST_FD = 3;
constexpr int RESULT_FD = 4;

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

std::string read_all(int fd) {
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return text;
    text.append(buf, static_cast<std::size_t>(n));
  }
}

void flush_streams() {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
}

// What the current exception says: its message, and its type when it is the standard library's own (a
// submission's own class is not named as the failure kind: its name could carry a hidden test's data).
sandbox::Object describe_current_exception() {
  using sandbox::Value;
  sandbox::Object out{{"exception", Value()}};
  std::string type;
  if (auto* t = abi::__cxa_current_exception_type()) type = sandbox::detail::type_name(*t);
  try {
    throw;
  } catch (const sandbox::detail::CallError& e) {
    out["error"] = Value(e.what());
    return out;
  } catch (const sandbox::detail::TooLarge&) {
    out["error"] = Value("the returned value is too large to compare");
    return out;
  } catch (const std::exception& e) {
    std::string what = e.what();
    out["error"] = Value(what.empty() || what == type ? type : type + ": " + what);
  } catch (...) {
    out["error"] = Value("threw a value of type " + (type.empty() ? std::string("unknown") : type));
  }
  if (type.rfind("std::", 0) == 0) out["exception"] = Value(type);
  return out;
}

sandbox::Value run_test(const sandbox::Object& test) {
  using namespace sandbox;
  if (test.count("ops")) {
    const Array& ops = test.at("ops").as_array();
    const Array& shapes = test.at("shapes").as_array();
    if (ops.empty() || shapes.size() != ops.size()) throw detail::CallError("the harness was sent invalid ops");
    std::vector<detail::Op> list;
    for (std::size_t k = 0; k < ops.size(); ++k) {
      list.push_back({static_cast<detail::Shape>(shapes[k].as_int()), &ops[k].as_array().at(1).as_array()});
    }
    return detail::dispatch_ops(static_cast<detail::Shape>(test.at("shape").as_int()), list);
  }
  return detail::dispatch_call(static_cast<detail::Shape>(test.at("shape").as_int()), test.at("args").as_array());
}

// An exception escaping the submission's main: say what it was, keep what was printed.
[[noreturn]] void on_terminate() {
  std::string error = "terminated";
  if (std::current_exception()) {
    try {
      std::rethrow_exception(std::current_exception());
    } catch (...) {
      error = describe_current_exception()["error"].as_string();
    }
  }
  flush_streams();
  write_all(RESULT_FD, error);
  std::_Exit(1);
}

__attribute__((constructor)) void start(int argc, char** argv, char**) {
  using sandbox::Value;
  if (argc > 1 && std::string(argv[1]) == "program") {
    std::set_terminate(on_terminate);
    return;  // to the submission's main
  }
  sandbox::Object reply;
  try {
    Value test = sandbox::detail::parse_json(read_all(TEST_FD));
    close(TEST_FD);
    reply["value"] = run_test(test.as_object());
  } catch (...) {
    reply = describe_current_exception();
  }
  flush_streams();
  write_all(RESULT_FD, Value(std::move(reply)).dump());
  std::_Exit(0);  // no static destructors of the submission after its result, and never its main
}

}  // namespace

// The main of a program test whose submission has none (the submission's own, a strong symbol, wins).
__attribute__((weak)) int main() {
  std::fputs("the program has no main function\n", stderr);
  return 1;
}
