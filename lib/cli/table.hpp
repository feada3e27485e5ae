// Aligned columns for people at a terminal; numbers right-aligned; colour only on a TTY that
// wants it (NO_COLOR unset, TERM not dumb).
#pragma once

#include <cstdio>
#include <string>
#include <string_view>
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
    std::size_t size() const { return rows_.size(); }
    // The columns a narrow screen drops, most dispensable first (indexes); the others stay.
    void set_drop_order(std::vector<std::size_t> columns) { drop_order_ = std::move(columns); }
    enum class Header { shown, hidden };
    // `max_width` 0: every column, whatever the width. Otherwise the table fits in that many
    // display columns: columns go in the drop order until the rows fit, then each line is cut
    // with "…".
    std::string render(Header header = Header::shown, std::size_t max_width = 0) const;

  private:
    std::vector<std::string> headers_;
    std::vector<bool> right_;
    std::vector<std::vector<std::string>> rows_;
    std::vector<std::size_t> drop_order_;
};

// Display width of `text`: UTF-8 characters, ANSI colour escapes not counted.
std::size_t display_width(std::string_view text);

// `text` cut to at most `width` display columns, the last of them "…" when something was cut;
// colour escapes are kept (and reset when the cut may have left one open).
std::string cut_to_width(std::string_view text, std::size_t width);

}  // namespace workq::cli
