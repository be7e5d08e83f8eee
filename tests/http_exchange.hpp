// One blocking HTTP/1.1 request to 127.0.0.1:PORT, for tests of our servers: (status, body).
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "common/asio.hpp"
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace torl::testing {

inline std::pair<unsigned, std::string> http_exchange(uint16_t port, boost::beast::http::verb verb,
                                                      const std::string& target, const std::string& body = "") {
  namespace http = boost::beast::http;
  boost::asio::io_context io;
  boost::beast::tcp_stream stream(io);
  stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> request{verb, target, 11};
  request.set(http::field::host, "127.0.0.1");
  request.body() = body;
  request.prepare_payload();
  http::write(stream, request);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);
  return {response.result_int(), response.body()};
}

}  // namespace torl::testing
