// Aligned columns for people at a terminal; numbers right-aligned; colour only on a TTY that
// wants it (NO_COLOR unset, TERM not dumb).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace workq::cli {

// True when stdout is a terminal and colour is welcome.
bool use_colour();

// True when stdout is a terminal: listings are for people (a header, ages like "4m ago");
// otherwise they are for programs (no header, RFC 3339 times, '-' for an empty cell).
bool stdout_is_terminal();

enum class Tone { plain, good, warn, bad, dim };
// Wraps text in the tone's colour when use_colour(), else returns it unchanged.
std::string paint(const std::string& text, Tone tone);

class Table {
  public:
    explicit Table(std::vector<std::string> headers, std::vector<bool> right_aligned = {});
    // A row; each cell may carry colour escapes (they do not count for the width).
    void add(std::vector<std::string> cells);
    bool empty() const { return rows_.empty(); }
    enum class Header { shown, hidden };
    std::string render(Header header = Header::shown) const;

  private:
    std::vector<std::string> headers_;
    std::vector<bool> right_;
    std::vector<std::vector<std::string>> rows_;
};

}  // namespace workq::cli
