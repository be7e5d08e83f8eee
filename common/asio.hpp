// Boost.Asio, included the one way the project does: Boost 1.74's asio/awaitable.hpp uses
// std::exchange without including <utility>, which breaks under C++20, so include it first.
#pragma once

#include <utility>

#include <boost/asio.hpp>
