// Drives the engine's HTTP front end through the C ABI with no Python in the process (run
// under ASan, UBSan and LeakSanitizer by tests/sanitizers/run.sh), over socketpairs: JSON and
// binary inference, pipelining, a connection handed back with the bytes read, a client that
// leaves while its request is in flight, and destruction with connections still open.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"
#include "infer_runtime.h"

namespace {

// One HTTP response read from `fd` (Content-Length framed); "" on timeout or close.
std::string read_response(int fd, std::string* buffer) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    size_t head_end = buffer->find("\r\n\r\n");
    if (head_end != std::string::npos) {
      size_t at = buffer->find("Content-Length: ");
      size_t length = at == std::string::npos || at > head_end ? 0 : std::stoul(buffer->substr(at + 16));
      if (buffer->size() >= head_end + 4 + length) {
        std::string out = buffer->substr(0, head_end + 4 + length);
        buffer->erase(0, out.size());
        return out;
      }
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return "";
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) return "";
    char chunk[4096];
    ssize_t got = recv(fd, chunk, sizeof chunk, 0);
    if (got <= 0) return "";
    buffer->append(chunk, static_cast<size_t>(got));
  }
}

std::string request(const std::string& body, const std::string& extra = "") {
  return "POST /v2/models/echo/infer HTTP/1.1\r\nHost: t\r\n" + extra + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

void send_all(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

// Waits up to 2 s for an event of `kind`; returns it (data copied) or kind 0.
ir_http_event wait_event(ir_http* http, int32_t kind, std::string* data) {
  for (int i = 0; i < 200; ++i) {
    ir_http_event events[8];
    int32_t n = ir_http_poll(http, events, 8);
    for (int32_t k = 0; k < n; ++k) {
      if (events[k].kind == kind) {
        if (data != nullptr) data->assign(events[k].data, events[k].size);
        return events[k];
      }
      if (events[k].kind == IR_HTTP_HANDOFF) close(events[k].fd);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return ir_http_event{};
}

int adopt_pair(ir_http* http) {
  int fds[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  ir_error* err = ir_http_adopt(http, fds[1]);
  CHECK(err == nullptr);
  ir_error_free(err);
  return fds[0];
}

}  // namespace

int main() {
  ir_engine* engine = nullptr;
  CHECK(ir_engine_create(&engine) == nullptr);
  int64_t shape[] = {-1, 4};
  ir_tensor sig{"x", IR_DTYPE_FLOAT32, 2, shape, nullptr, 0};
  ir_model_config cfg = base_config("echo", IR_BACKEND_IDENTITY, &sig);
  cfg.batching = 1;
  cfg.max_batch_size = 8;
  cfg.max_queue_delay_us = 200;
  ir_model* model = nullptr;
  CHECK(ir_engine_add_model(engine, &cfg, &model) == nullptr);

  ir_http_options options{1 << 20, 2000, 5000};
  ir_http* http = nullptr;
  CHECK(ir_http_create(engine, &options, &http) == nullptr);
  CHECK(ir_http_route(http, "echo", "3", model) == nullptr);

  // JSON, then binary, on one keep-alive connection; then two pipelined requests.
  int client = adopt_pair(http);
  std::string buffer;
  send_all(client, request(R"({"id":"a","inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2.5,-0.0,3]}]})"));
  std::string r = read_response(client, &buffer);
  CHECK(r.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(r.find(R"({"model_name":"echo","model_version":"3","outputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1.0,2.5,-0.0,3.0]}],"id":"a"})") !=
        std::string::npos);
  const std::string header = R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"parameters":{"binary_data_size":16}}],"parameters":{"binary_data_output":true}})";
  float values[4] = {4, 5, 6, 7};
  std::string body = header + std::string(reinterpret_cast<const char*>(values), sizeof values);
  send_all(client, request(body, "Inference-Header-Content-Length: " + std::to_string(header.size()) + "\r\n"));
  r = read_response(client, &buffer);
  CHECK(r.find("Content-Type: application/octet-stream") != std::string::npos);
  CHECK(r.size() >= 16 && std::memcmp(r.data() + r.size() - 16, values, 16) == 0);
  const std::string one = request(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[9,9,9,9]}]})");
  send_all(client, one + one);
  CHECK(read_response(client, &buffer).find("[9.0,9.0,9.0,9.0]") != std::string::npos);
  CHECK(read_response(client, &buffer).find("[9.0,9.0,9.0,9.0]") != std::string::npos);

  // Another endpoint: the connection goes back to the host with what was read.
  const std::string ready = "GET /v2/health/ready HTTP/1.1\r\nHost: t\r\n\r\n";
  send_all(client, ready);
  std::string handed;
  ir_http_event e = wait_event(http, IR_HTTP_HANDOFF, &handed);
  CHECK(e.kind == IR_HTTP_HANDOFF && e.fd >= 0 && handed == ready);
  if (e.kind == IR_HTTP_HANDOFF) close(e.fd);
  close(client);
  CHECK(ir_http_served(http) == 4 && ir_http_handed_off(http) == 1);

  // A client that sends a request and leaves at once: answered into the void, freed after.
  for (int i = 0; i < 20; ++i) {
    int gone = adopt_pair(http);
    send_all(gone, one);
    close(gone);
  }
  // A connection closed by its client between requests is reported closed.
  int idle = adopt_pair(http);
  send_all(idle, one);
  CHECK(!read_response(idle, &buffer).empty());
  close(idle);
  CHECK(wait_event(http, IR_HTTP_CLOSED, nullptr).kind == IR_HTTP_CLOSED);

  // Destroyed with a connection open (after the engine stopped, as the host does).
  int open = adopt_pair(http);
  send_all(open, one);
  CHECK(!read_response(open, &buffer).empty());
  ir_engine_stop(engine, 1000000);
  ir_http_destroy(http);
  char byte;
  CHECK(recv(open, &byte, 1, 0) == 0);  // closed by the front end
  close(open);
  ir_model_release(model);
  ir_engine_destroy(engine);
  if (ir_test::failures() == 0) std::printf("test_http_native: ok\n");
  return ir_test::failures();
}
