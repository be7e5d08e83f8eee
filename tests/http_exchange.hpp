// One blocking HTTP/1.1 request to 127.0.0.1:PORT, for tests of our servers: (status, body), or the
// whole reply with http_call. Each exchange has a deadline (120 s unless told), past which it throws:
// a server that never answers fails the test instead of hanging it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "common/asio.hpp"
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace torl::testing {

struct HttpReply {
  unsigned status = 0;
  std::string content_type;
  std::string body;
};

inline HttpReply http_call(uint16_t port, boost::beast::http::verb verb, const std::string& target,
                           const std::string& body = "", std::chrono::seconds deadline = std::chrono::seconds(120)) {
  namespace http = boost::beast::http;
  boost::asio::io_context io;
  boost::beast::tcp_stream stream(io);
  stream.expires_after(deadline);
  stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> request{verb, target, 11};
  request.set(http::field::host, "127.0.0.1");
  if (!body.empty()) request.set(http::field::content_type, "application/json");
  request.body() = body;
  request.prepare_payload();
  stream.expires_after(deadline);
  http::write(stream, request);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> response;
  // The synchronous read ignores the stream's deadline, so read asynchronously and run until done.
  boost::system::error_code read_error;
  http::async_read(stream, buffer, response, [&](boost::system::error_code ec, size_t) { read_error = ec; });
  io.run();
  if (read_error) throw boost::system::system_error(read_error, "reading the HTTP answer");
  return {response.result_int(), std::string(response[http::field::content_type]), response.body()};
}

inline std::pair<unsigned, std::string> http_exchange(uint16_t port, boost::beast::http::verb verb,
                                                      const std::string& target, const std::string& body = "") {
  HttpReply reply = http_call(port, verb, target, body);
  return {reply.status, std::move(reply.body)};
}

}  // namespace torl::testing
