#include "http_front.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>

#include "../engine/clock.hpp"
#include "http_head.hpp"
#include "v2_fast.hpp"

namespace ir::http {

namespace {

constexpr size_t kReadChunk = 16384;
constexpr int kPipelineBudget = 32;
constexpr size_t kKeepBytes = 1 << 20;     // larger buffers are freed between requests        // requests of one connection served per loop turn
constexpr int64_t kSweepNs = 100'000'000;  // timeouts are checked every 0.1 s
constexpr uint32_t kReading = EPOLLIN | EPOLLRDHUP;
constexpr uint32_t kWaiting = EPOLLRDHUP;  // in flight: only a client that goes away matters
constexpr uint32_t kWriting = EPOLLOUT;    // (EPOLLRDHUP here would fire forever on a half-close)
// The front end's cookies carry this bit, so a cancel never reaches a request of the host's
// (whose cookies stay below 2^62) or of a pipeline step (bit 63) under the same model.
constexpr uint64_t kCookieBit = uint64_t{1} << 62;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The kind of exception a backend failure names ("ValueError"), as Python's client message
// shows it: a capitalised word ending in Error, Exception, Exit or Interrupt.
std::string exception_kind(const std::string& message) {
  static const char* const kEndings[] = {"Error", "Exception", "Exit", "Interrupt"};
  // Bytes of multi-byte UTF-8 count as word characters, as most of what they encode is \w to
  // Python: no kind is named where Python would not name one.
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || static_cast<unsigned char>(c) >= 0x80;
  };
  for (size_t i = 0; i < message.size(); ++i) {
    if (message[i] < 'A' || message[i] > 'Z' || (i > 0 && word(message[i - 1]))) continue;
    size_t j = i;
    while (j < message.size() && word(message[j])) ++j;
    const std::string_view w(message.data() + i, j - i);
    for (const char* ending : kEndings) {
      const size_t n = std::strlen(ending);
      if (w.size() > n && w.substr(w.size() - n) == ending) return std::string(w);
    }
    i = j;
  }
  return "";
}

bool plain_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

}  // namespace

struct Conn {
  uint64_t id = 0;
  int fd = -1;
  std::vector<uint8_t> in;   // bytes read: the current request starts at in[start]
  size_t start = 0;
  size_t len = 0;            // bytes held in `in`
  std::string out;           // the response being written
  size_t sent = 0;
  uint32_t interest = 0;
  bool in_flight = false;    // submitted, not yet completed: `in` is borrowed by the engine
  bool writing = false;
  bool dead = false;         // closed or handed off; erased once nothing refers to it
  bool close_after = false;
  bool paused = false;       // in ready_ after using its turn: not read meanwhile
  int64_t request_start_ns = 0;  // first byte of the current request; 0 between requests
  int64_t idle_since_ns = 0;
  int64_t last_write_ns = 0;     // the last progress of a response being written
  size_t request_bytes = 0;      // head and body of the request being answered
  size_t head_scanned = 0;       // how far the head of the next request has been searched
  size_t need = 0;               // bytes the current request needs in all, once its head is read
  // The request in flight.
  std::shared_ptr<Model> model;
  std::string model_name;
  std::string version;
  std::string request_id;    // for log events and 5xx messages ("" until needed)
  std::shared_ptr<std::atomic<int64_t>> last_ms;
  DecodedRequest request;
};

HttpFront::HttpFront(const FrontOptions& options) : options_(options) {}

Status HttpFront::Create(const FrontOptions& options, std::unique_ptr<HttpFront>* out) {
  std::unique_ptr<HttpFront> front(new HttpFront(options));
  front->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  front->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  front->event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (front->epoll_fd_ < 0 || front->wake_fd_ < 0 || front->event_fd_ < 0)
    return Status(IR_ERROR_UNAVAILABLE, std::string("cannot create the HTTP front end's descriptors: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;  // connection ids start at 1
  if (epoll_ctl(front->epoll_fd_, EPOLL_CTL_ADD, front->wake_fd_, &ev) != 0)
    return Status(IR_ERROR_UNAVAILABLE, std::string("cannot watch the HTTP front end's wake-up: ") + std::strerror(errno));
  std::random_device seed;
  char prefix[16];
  std::snprintf(prefix, sizeof prefix, "%08x", seed());
  front->id_prefix_ = prefix;
  front->thread_ = std::thread([f = front.get()] { f->run(); });
  *out = std::move(front);
  return Status::Ok();
}

HttpFront::~HttpFront() {
  set_admitting(false);
  {
    std::unique_lock<std::mutex> lock(flight_mu_);
    flight_cv_.wait(lock, [this] { return in_flight_ == 0; });
  }
  exit_.store(true, std::memory_order_release);
  if (thread_.joinable()) {
    wake_pending_.store(false, std::memory_order_release);
    wake();
    thread_.join();
  }
  for (auto& [id, c] : conns_) {
    if (!c->dead) ::close(c->fd);
  }
  for (int fd : adopted_) ::close(fd);
  for (const Event& e : events_) {
    if (e.kind == EventKind::kHandoff) ::close(e.fd);
  }
  for (int fd : {epoll_fd_, wake_fd_, event_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

void HttpFront::route(const std::string& name, const std::string& version, std::shared_ptr<Model> model) {
  Route r;
  r.version = version;
  r.fast = model != nullptr && model_fast(model->config());
  r.model = std::move(model);
  std::lock_guard<std::mutex> lock(routes_mu_);
  auto it = routes_.find(name);
  r.last_ms = it != routes_.end() ? it->second.last_ms : std::make_shared<std::atomic<int64_t>>(0);
  routes_[name] = std::move(r);
}

void HttpFront::unroute(const std::string& name) {
  std::lock_guard<std::mutex> lock(routes_mu_);
  routes_.erase(name);
}

int64_t HttpFront::last_answer_ms(const std::string& name) {
  std::lock_guard<std::mutex> lock(routes_mu_);
  auto it = routes_.find(name);
  return it == routes_.end() ? 0 : it->second.last_ms->load(std::memory_order_relaxed);
}

Status HttpFront::adopt(int fd) {
  const int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
    return Status(IR_ERROR_INVALID_ARGUMENT, std::string("not an open socket: ") + std::strerror(errno));
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    adopted_.push_back(fd);
  }
  wake();
  return Status::Ok();
}

void HttpFront::wake() {
  if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
  const uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
  (void)ignored;
}

void HttpFront::push_event(Event event) {
  std::lock_guard<std::mutex> lock(events_mu_);
  events_.push_back(std::move(event));
  if (!events_signalled_) {
    events_signalled_ = true;
    const uint64_t one = 1;
    ssize_t ignored = ::write(event_fd_, &one, sizeof one);
    (void)ignored;
  }
}

size_t HttpFront::poll(std::vector<Event>* out, size_t max) {
  std::lock_guard<std::mutex> lock(events_mu_);
  uint64_t count = 0;
  ssize_t ignored = ::read(event_fd_, &count, sizeof count);
  (void)ignored;
  const size_t n = events_.size() < max ? events_.size() : max;
  out->assign(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.begin() + static_cast<std::ptrdiff_t>(n)));
  events_.erase(events_.begin(), events_.begin() + static_cast<std::ptrdiff_t>(n));
  events_signalled_ = !events_.empty();
  if (events_signalled_) {
    const uint64_t one = 1;
    ignored = ::write(event_fd_, &one, sizeof one);
  }
  return n;
}

void HttpFront::complete(std::vector<Completion>& done) {
  const auto n = static_cast<int64_t>(done.size());
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    for (Completion& c : done) completed_.push_back(std::move(c));
  }
  done.clear();
  wake();
  std::lock_guard<std::mutex> lock(flight_mu_);
  in_flight_ -= n;
  flight_cv_.notify_all();  // under the lock: the destructor cannot go before this returns
}

void HttpFront::run() {
  epoll_event events[64];
  int64_t next_sweep = now_ns() + kSweepNs;
  std::vector<uint64_t> dead;
  std::vector<uint64_t> ready;
  while (keep_running()) {
    const int n = epoll_wait(epoll_fd_, events, 64, ready_.empty() ? (exit_.load(std::memory_order_acquire) ? 10 : 100) : 0);
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[i].data.u64;
      if (id == 0) {
        uint64_t count = 0;
        ssize_t ignored = ::read(wake_fd_, &count, sizeof count);
        (void)ignored;
        wake_pending_.store(false, std::memory_order_release);
        drain_inbox();
        continue;
      }
      auto it = conns_.find(id);
      if (it == conns_.end() || it->second->dead) continue;
      Conn& c = *it->second;
      const uint32_t got = events[i].events;
      if (got & EPOLLERR) {
        close_conn(c, false);
      } else if (c.in_flight) {
        if (got & (EPOLLRDHUP | EPOLLHUP)) close_conn(c, false);  // cancels the queued request
      } else if (c.writing) {
        if (got & EPOLLOUT) {
          if (flush(c)) ready_.push_back(c.id);
        } else if (got & EPOLLHUP) {
          close_conn(c, false);
        }
      } else if (got & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) {
        on_readable(c);
      }
    }
    // Requests already read (pipelined, or after an answer went out) are served here, a
    // bounded number per connection and turn: never by recursion, and no client starves others.
    ready.swap(ready_);
    for (uint64_t id : ready) {
      auto it = conns_.find(id);
      if (it != conns_.end() && !it->second->dead) serve_buffered(*it->second);
    }
    ready.clear();
    const int64_t now = now_ns();
    if (now >= next_sweep) {
      sweep(now);
      next_sweep = now + kSweepNs;
    }
    dead.swap(dead_);
    for (uint64_t id : dead) {
      auto it = conns_.find(id);
      if (it != conns_.end() && !it->second->in_flight) conns_.erase(it);  // in flight: listed again at its completion
    }
    dead.clear();
  }
}

bool HttpFront::keep_running() {
  if (!exit_.load(std::memory_order_acquire)) return true;
  // Stopping: the destructor waited for every answer; the loop runs on (up to a second) only
  // while answers are still being written, so none is cut short.
  if (closing_deadline_ == 0) {
    closing_deadline_ = now_ns() + 1'000'000'000;
    drain_inbox();
  }
  if (now_ns() > closing_deadline_) return false;
  for (auto& [id, c] : conns_) {
    if (!c->dead && c->writing) return true;
  }
  return false;
}

void HttpFront::drain_inbox() {
  std::vector<int> adopted;
  std::vector<Completion> completed;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    adopted.swap(adopted_);
    completed.swap(completed_);
  }
  for (int fd : adopted) {
    auto c = std::make_unique<Conn>();
    c->id = next_id_++;
    c->fd = fd;
    c->request_start_ns = now_ns();  // the first request must come in time, as any
    c->idle_since_ns = c->request_start_ns;
    c->interest = kReading;
    epoll_event ev{};
    ev.events = kReading;
    ev.data.u64 = c->id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      push_event(Event{EventKind::kClosed, -1, 0, {}, {}, {}});
      continue;
    }
    conns_.emplace(c->id, std::move(c));
  }
  for (const Completion& done : completed) {
    auto it = conns_.find(done.cookie & ~kCookieBit);
    if (it == conns_.end()) continue;
    Conn& c = *it->second;
    c.in_flight = false;
    if (c.dead) {  // the client went away: nothing to answer; its buffer may go now
      dead_.push_back(c.id);
      continue;
    }
    finish(c, done);
  }
}

void HttpFront::on_readable(Conn& c) {
  // One read per wake-up (level-triggered: more data wakes us again), into room that grows
  // with what has arrived, never with what a head announces.
  if (c.in.size() - c.len < kReadChunk) {
    if (c.start > 0) {  // not in flight (we only read then): the buffer may move
      std::memmove(c.in.data(), c.in.data() + c.start, c.len - c.start);
      c.len -= c.start;
      c.start = 0;
    }
    if (c.in.size() - c.len < kReadChunk) c.in.resize(c.len + std::max(c.len, 2 * kReadChunk));
  }
  const ssize_t got = ::recv(c.fd, c.in.data() + c.len, c.in.size() - c.len, 0);
  if (got > 0) {
    if (c.len == c.start && c.request_start_ns == 0) c.request_start_ns = now_ns();
    c.len += static_cast<size_t>(got);
    serve_buffered(c);
    return;
  }
  if (got == 0) {  // the client closed: whatever it sent is all there will be
    serve_buffered(c);
    if (!c.dead && !c.in_flight && !c.writing) close_conn(c, false);
    return;
  }
  if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return;
  close_conn(c, false);
}

void HttpFront::serve_buffered(Conn& c) {
  if (c.paused && !c.dead) {
    c.paused = false;
    set_interest(c, kReading);
  }
  for (int budget = kPipelineBudget; budget > 0; --budget) {
    if (c.dead || c.in_flight || c.writing) return;
    const size_t held = c.len - c.start;
    if (held == 0 || held < c.need) return;
    const char* data = reinterpret_cast<const char*>(c.in.data() + c.start);
    Head head;
    const HeadResult r = parse_head(data, held, &head, &c.head_scanned);
    if (r == HeadResult::kIncomplete) return;
    if (r == HeadResult::kDecline || !admitting_.load(std::memory_order_acquire) || head.content_length < 0 ||
        head.content_length > options_.max_request_bytes) {
      hand_off(c);
      return;
    }
    // Route as soon as the head is in: a request that is not ours goes to Python now (it
    // may answer without the body, as for an unknown model), not after the body.
    Route route;
    std::string_view name;
    if (!find_route(head, &route, &name)) {
      hand_off(c);
      return;
    }
    const size_t total = head.size + static_cast<size_t>(head.content_length);
    if (held < total) {
      c.need = total;  // the head is read again only once the body is in
      return;
    }
    switch (try_submit(c, head, std::move(route), name)) {
      case Submitted::kInFlight:
        return;
      case Submitted::kDeclined:
        hand_off(c);
        return;
      case Submitted::kAnswered:
        if (!flush(c)) return;  // still writing, or closed
        break;                  // answered at once (a full queue): on to the next request
    }
  }
  // Budget spent: the rest on the next turn, reading nothing more meanwhile (requests
  // answered at once, 503s, would otherwise let a client's backlog grow without bound).
  c.paused = true;
  set_interest(c, 0);
  ready_.push_back(c.id);
}

bool HttpFront::find_route(const Head& head, Route* route, std::string_view* name) {
  constexpr std::string_view kPrefix = "/v2/models/";
  constexpr std::string_view kInfer = "/infer";
  constexpr std::string_view kVersions = "/versions/";
  const std::string_view target = head.target;
  if (target.size() <= kPrefix.size() + kInfer.size() || target.substr(0, kPrefix.size()) != kPrefix ||
      target.substr(target.size() - kInfer.size()) != kInfer)
    return false;
  const std::string_view rest = target.substr(kPrefix.size(), target.size() - kPrefix.size() - kInfer.size());
  *name = rest;
  std::string_view version;
  bool versioned = false;
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    *name = rest.substr(0, slash);
    if (rest.substr(slash, kVersions.size()) != kVersions) return false;
    version = rest.substr(slash + kVersions.size());
    versioned = true;
    if (version.empty() || version.find('/') != std::string_view::npos) return false;
  }
  {
    std::lock_guard<std::mutex> lock(routes_mu_);
    auto it = routes_.find(*name);
    if (it == routes_.end()) return false;
    *route = it->second;
  }
  if (!route->fast || (versioned && version != route->version)) return false;
  // Replaced, and the host has not routed the new version yet: Python names the version exactly.
  return route->model->successor() == nullptr;
}

HttpFront::Submitted HttpFront::try_submit(Conn& c, const Head& head, Route route, std::string_view name) {
  const auto body_size = static_cast<uint64_t>(head.content_length);
  const uint64_t header_size = head.inference_header_length >= 0 ? static_cast<uint64_t>(head.inference_header_length) : body_size;
  if (header_size == 0 || header_size > body_size) return Submitted::kDeclined;
  const uint8_t* body = c.in.data() + c.start + head.size;
  const ModelConfig& config = route.model->config();
  if (!decode(config, std::string_view(reinterpret_cast<const char*>(body), header_size), body + header_size, body_size - header_size, &c.request))
    return Submitted::kDeclined;
  c.request_bytes = head.size + body_size;
  c.close_after = head.close || options_.keepalive_timeout_ns == 0;
  c.model_name.assign(name);
  c.version = route.version;
  c.last_ms = route.last_ms;
  c.request_id.clear();
  if (c.request.has_id && !c.request.id.empty()) c.request_id = c.request.id;
  else if (plain_request_id(head.request_id)) c.request_id.assign(head.request_id);
  {
    std::lock_guard<std::mutex> lock(flight_mu_);
    ++in_flight_;
  }
  c.in_flight = true;
  int32_t admitted = 0;
  Status s;
  try {
    s = route.model->submit_many(kCookieBit | c.id, c.request.refs.data(), static_cast<int32_t>(c.request.refs.size()), nullptr, 1, c.request.priority,
                                 c.request.timeout_us, true, &admitted, this);
  } catch (...) {  // out of memory: Python answers it
    s = Status(IR_ERROR_INTERNAL, "submission failed");
  }
  if (s.ok()) {
    c.model = std::move(route.model);
    set_interest(c, kWaiting);
    return Submitted::kInFlight;
  }
  c.in_flight = false;
  {
    std::lock_guard<std::mutex> lock(flight_mu_);
    --in_flight_;
  }
  if (s.code() != IR_ERROR_RESOURCE_EXHAUSTED) return Submitted::kDeclined;  // Python answers, with its own words
  answer_error(c, 503, redact_paths(s.message()), s.message());  // overload: a fast rejection that keeps the connection here
  return Submitted::kAnswered;
}

void HttpFront::set_interest(Conn& c, uint32_t interest) {
  if (c.interest == interest) return;
  epoll_event ev{};
  ev.events = interest;
  ev.data.u64 = c.id;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev) == 0) c.interest = interest;
}

void HttpFront::finish(Conn& c, const Completion& done) {
  c.model.reset();
  if (done.error.ok()) {
    std::string problem;
    if (encode_response(c.model_name, c.version, c.request, done, c.close_after, &c.out, &problem)) {
      served_.fetch_add(1, std::memory_order_relaxed);
      c.last_ms->store(wall_ms(), std::memory_order_relaxed);
    } else {
      answer_error(c, 400, redact_paths(problem), problem);
    }
  } else {
    const std::string& message = done.error.message();
    switch (done.error.code()) {
      case IR_ERROR_DEADLINE_EXCEEDED:
      case IR_ERROR_CANCELLED:
      case IR_ERROR_UNAVAILABLE:
      case IR_ERROR_RESOURCE_EXHAUSTED:
        answer_error(c, 503, redact_paths(message), message);
        break;
      case IR_ERROR_INVALID_ARGUMENT:
        answer_error(c, 400, redact_paths(message), message);
        break;
      case IR_ERROR_NOT_FOUND:
        answer_error(c, 404, redact_paths(message), message);
        break;
      case IR_ERROR_BACKEND: {
        // As Python's client_message: the kind of failure and where the details are.
        const std::string kind = exception_kind(message);
        answer_error(c, 500,
                     "the model failed to run this request" + (kind.empty() ? std::string() : " (" + kind + ")") + "; request id " + request_id_of(c) +
                         "; details are in the server log",
                     message);
        break;
      }
      default:
        answer_error(c, 500, "internal server error; request id " + request_id_of(c) + "; details are in the server log", message);
        break;
    }
  }
  if (flush(c)) ready_.push_back(c.id);
}

void HttpFront::answer_error(Conn& c, int status, const std::string& client_message, const std::string& log_message) {
  encode_error(status, client_message, c.close_after, &c.out);
  push_event(Event{EventKind::kFailed, -1, status, c.model_name, request_id_of(c), log_message});
}

bool HttpFront::flush(Conn& c) {
  while (c.sent < c.out.size()) {
    const ssize_t put = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (put > 0) {
      c.sent += static_cast<size_t>(put);
      c.last_write_ns = now_ns();
      continue;
    }
    if (put < 0 && errno == EINTR) continue;
    if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c.writing) c.last_write_ns = now_ns();
      c.writing = true;
      set_interest(c, kWriting);
      return false;
    }
    close_conn(c, false);
    return false;
  }
  // The whole response is out: the next request starts after this one.
  c.out.clear();
  c.sent = 0;
  c.writing = false;
  c.start += c.request_bytes;
  if (c.start == c.len) {
    c.start = c.len = 0;
    if (c.in.capacity() > kKeepBytes) std::vector<uint8_t>().swap(c.in);  // one big request does not pin its buffer
  }
  for (std::vector<uint8_t>& data : c.request.json_data) {
    if (data.capacity() > kKeepBytes) std::vector<uint8_t>().swap(data);
  }
  c.request_bytes = 0;
  c.head_scanned = 0;
  c.need = 0;
  c.request_start_ns = c.len > c.start ? now_ns() : 0;
  c.idle_since_ns = now_ns();
  if (c.close_after) {
    close_conn(c, false);
    return false;
  }
  set_interest(c, kReading);
  return c.len > c.start;  // a pipelined request is already here
}

void HttpFront::hand_off(Conn& c) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  c.dead = true;
  dead_.push_back(c.id);
  handed_off_.fetch_add(1, std::memory_order_relaxed);
  push_event(Event{EventKind::kHandoff, c.fd, 0, {}, {}, std::string(reinterpret_cast<const char*>(c.in.data() + c.start), c.len - c.start)});
  c.fd = -1;
}

void HttpFront::close_conn(Conn& c, bool timed_out) {
  const bool stalled = timed_out && c.writing;
  if (c.dead) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  ::close(c.fd);
  c.fd = -1;
  c.dead = true;
  dead_.push_back(c.id);
  if (c.in_flight && c.model != nullptr) {
    c.model->cancel(kCookieBit | c.id);  // still queued: it need not run
    push_event(Event{EventKind::kCancelled, -1, 0, c.model_name, c.request_id, {}});
  }
  if (timed_out) push_event(Event{stalled ? EventKind::kStalled : EventKind::kTimedOut, -1, 0, c.model_name, {}, {}});
  push_event(Event{EventKind::kClosed, -1, 0, {}, {}, {}});
}

void HttpFront::sweep(int64_t now) {
  for (auto& [id, conn] : conns_) {
    Conn& c = *conn;
    if (c.dead || c.in_flight) continue;
    if (c.writing) {  // a client that stopped reading its answer
      if (now - c.last_write_ns > options_.read_timeout_ns) close_conn(c, true);
      continue;
    }
    if (c.request_start_ns != 0) {
      if (now - c.request_start_ns > options_.read_timeout_ns) close_conn(c, true);
    } else if (now - c.idle_since_ns > options_.keepalive_timeout_ns) {
      close_conn(c, false);
    }
  }
}

const std::string& HttpFront::request_id_of(Conn& c) {
  if (c.request_id.empty()) {  // the client named none: one made up, as Python does
    char buf[48];
    std::snprintf(buf, sizeof buf, "%s-n%llx", id_prefix_.c_str(), static_cast<unsigned long long>(++id_counter_));
    c.request_id = buf;
  }
  return c.request_id;
}

}  // namespace ir::http
