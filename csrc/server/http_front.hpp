// HttpFront: the engine answering KServe v2 inference requests over HTTP itself, so a
// request to a plain model never enters the Python interpreter.
//
// The Python server still owns the socket it listens on and every decision about a
// connection's fate: it accepts, hands each connection in (adopt), and gets back, as events,
// the connections the front end declines, the errors it answered, and the connections it
// closed. The front end serves a connection as long as its requests are inference requests
// it understands completely (http_head.hpp, v2_fast.hpp) to a model routed to it; at the
// first one it does not, it hands the connection back, with the bytes it has read, and the
// Python server serves that connection from then on. So every error message, every
// unusual request and every other endpoint keep their one implementation in Python.
//
// Threading: one I/O thread (epoll) reads, decodes, submits and writes. Completions arrive on
// engine threads (complete()), are queued, and the I/O thread encodes and writes them. Every
// public method may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "../engine/completion.hpp"
#include "../engine/model.hpp"
#include "../engine/status.hpp"

namespace ir::http {

struct FrontOptions {
  int64_t max_request_bytes = 64 << 20;   // larger bodies are the Python server's (413)
  int64_t read_timeout_ns = 30'000'000'000;
  int64_t keepalive_timeout_ns = 15'000'000'000;  // 0: close after each response
};

enum class EventKind : int32_t {
  kHandoff = 1,  // fd: a connection for the Python server; data: the bytes read from it so far
  kClosed = 2,   // a connection the front end served is closed (its slot is free)
  kFailed = 3,   // a request answered with an error: status, model, request id, data = message
  kTimedOut = 4, // a connection closed because its request did not arrive in time
  kCancelled = 5,  // a client left while its request was in flight (cancelled if still queued)
  kStalled = 6,    // a connection closed because its client stopped reading an answer
};

struct Event {
  EventKind kind = EventKind::kClosed;
  int32_t fd = -1;
  int32_t status = 0;
  std::string model;
  std::string request_id;
  std::string data;
};

struct Conn;
struct Head;

class HttpFront final : public CompletionSink {
 public:
  static Status Create(const FrontOptions& options, std::unique_ptr<HttpFront>* out);
  // Stops the I/O thread and closes the connections it serves. Requests still in flight are
  // waited for (call after the engine stopped, which completes them all).
  ~HttpFront() override;
  HttpFront(const HttpFront&) = delete;
  HttpFront& operator=(const HttpFront&) = delete;

  // Routes /v2/models/{name}[/versions/{version}]/infer to `model`, answering with `version`
  // (replaces an earlier route). A model the fast path cannot serve is routed to Python.
  void route(const std::string& name, const std::string& version, std::shared_ptr<Model> model);
  void unroute(const std::string& name);
  // While false, every request is handed to the Python server (draining, stopping).
  void set_admitting(bool admitting) { admitting_.store(admitting, std::memory_order_release); }
  // Takes a connected socket (the front end owns it from now on).
  Status adopt(int fd);
  // Readable (an eventfd) while events wait; poll() takes up to `max` of them.
  [[nodiscard]] int event_fd() const { return event_fd_; }
  size_t poll(std::vector<Event>* out, size_t max);
  // Wall-clock ms of the last inference the front end answered for `name` (0: none).
  int64_t last_answer_ms(const std::string& name);
  // Requests decoded and submitted by the front end, and handed to Python, so far.
  [[nodiscard]] uint64_t served() const { return served_.load(std::memory_order_relaxed); }
  [[nodiscard]] uint64_t handed_off() const { return handed_off_.load(std::memory_order_relaxed); }

  void complete(std::vector<Completion>& done) override;

 private:
  struct Route {
    std::string version;
    std::shared_ptr<Model> model;
    bool fast = false;
    std::shared_ptr<std::atomic<int64_t>> last_ms;
  };

  explicit HttpFront(const FrontOptions& options);
  void run();
  bool keep_running();
  void drain_inbox();
  void wake();
  void push_event(Event event);
  void on_readable(Conn& c);
  enum class Submitted { kInFlight, kAnswered, kDeclined };
  void serve_buffered(Conn& c);
  bool find_route(const Head& head, Route* route, std::string_view* name);
  Submitted try_submit(Conn& c, const Head& head, Route route, std::string_view name);
  void set_interest(Conn& c, uint32_t interest);
  void finish(Conn& c, const Completion& done);
  void answer_error(Conn& c, int status, const std::string& client_message, const std::string& log_message);
  // Writes what is pending; true when the answer is out and a next request is already read.
  bool flush(Conn& c);
  void hand_off(Conn& c);
  void close_conn(Conn& c, bool timed_out);
  void sweep(int64_t now_ns);
  // The request's id for logs and 5xx messages, made up on first use when the client sent none.
  const std::string& request_id_of(Conn& c);

  FrontOptions options_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int event_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> exit_{false};
  std::atomic<bool> admitting_{true};
  std::atomic<uint64_t> served_{0};
  std::atomic<uint64_t> handed_off_{0};

  std::mutex routes_mu_;
  std::map<std::string, Route, std::less<>> routes_;

  // Handed in by other threads, taken by the I/O thread.
  std::mutex inbox_mu_;
  std::vector<int> adopted_;
  std::vector<Completion> completed_;
  std::atomic<bool> wake_pending_{false};

  std::mutex events_mu_;
  std::vector<Event> events_;
  bool events_signalled_ = false;

  // Requests submitted and not yet completed (the destructor waits for them).
  std::mutex flight_mu_;
  std::condition_variable flight_cv_;
  int64_t in_flight_ = 0;

  // I/O thread only.
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::vector<uint64_t> ready_;  // connections with a request read and not yet served
  std::vector<uint64_t> dead_;   // connections closed or handed off, to erase when idle
  int64_t closing_deadline_ = 0;
  std::string id_prefix_;
  uint64_t id_counter_ = 0;
};

}  // namespace ir::http
