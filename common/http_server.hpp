// HttpServer: a small HTTP/1.1 server (keep-alive) for torl's endpoints: `torl sandbox serve` (the
// SandboxFusion API) and a training run's /healthz and /metrics.
//
// One Boost.Asio thread, owned by the server, accepts and serves every connection. Each request goes
// to the handler on that thread together with a Respond callback; the handler answers at once or later,
// from any thread (long work such as running code must not block the handler). While one connection
// waits for its answer the others are served. Respond once; a Respond dropped unanswered (every copy
// destroyed) answers 500, so a forgotten answer never hangs a client. Destroying the server stops
// accepting, closes the connections that wait for a request, and waits until every request handed to
// the handler is answered; those answers still reach their clients, then their connections close.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.hpp"

namespace torl {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // the target without its query: "/metrics"
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class HttpServer {
 public:
  using Respond = std::function<void(HttpResponse)>;
  using Handler = std::function<void(HttpRequest, Respond)>;

  // Listens on `listen` ("HOST:PORT", "[::1]:PORT"; port 0 picks a free one) and serves until
  // destroyed. Returns once the socket is listening, or why it cannot listen (bad address, port in use).
  static Expected<std::unique_ptr<HttpServer>> start(const std::string& listen, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The address it listens on, with the port it got: "127.0.0.1:40123".
  std::string address() const;
  uint16_t port() const;

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace torl
