#include "cli/table.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace workq::cli {
namespace {

// Display width: UTF-8 characters, not counting ANSI escapes.
std::size_t width(const std::string& text) {
    std::size_t count = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\x1b') {
            while (i < text.size() && text[i] != 'm')
                ++i;
            continue;
        }
        if ((static_cast<unsigned char>(text[i]) & 0xc0) != 0x80) ++count;
    }
    return count;
}

}  // namespace

bool use_colour() {
    static const bool colour = [] {
        if (std::getenv("NO_COLOR") && *std::getenv("NO_COLOR")) return false;
        const char* term = std::getenv("TERM");
        if (term && std::strcmp(term, "dumb") == 0) return false;
        return ::isatty(STDOUT_FILENO) == 1;
    }();
    return colour;
}

bool stdout_is_terminal() {
    static const bool terminal = ::isatty(STDOUT_FILENO) == 1;
    return terminal;
}

std::string paint(const std::string& text, Tone tone) {
    if (!use_colour() || tone == Tone::plain) return text;
    const char* code = tone == Tone::good   ? "32"
                       : tone == Tone::warn ? "33"
                       : tone == Tone::bad  ? "31"
                                            : "2";
    return std::string("\x1b[") + code + "m" + text + "\x1b[0m";
}

Table::Table(std::vector<std::string> headers, std::vector<bool> right_aligned)
    : headers_(std::move(headers)), right_(std::move(right_aligned)) {
    right_.resize(headers_.size(), false);
}

void Table::add(std::vector<std::string> cells) {
    cells.resize(headers_.size());
    rows_.push_back(std::move(cells));
}

std::string Table::render(Header header) const {
    std::vector<std::size_t> widths(headers_.size());
    for (std::size_t c = 0; c < headers_.size(); ++c) {
        widths[c] = header == Header::shown ? width(headers_[c]) : 0;
        for (const auto& row : rows_)
            widths[c] = std::max(widths[c], width(row[c]));
    }
    std::string out;
    auto line = [&](const std::vector<std::string>& cells, bool is_header) {
        std::string text;
        for (std::size_t c = 0; c < cells.size(); ++c) {
            std::string pad(widths[c] - width(cells[c]), ' ');
            bool last = c + 1 == cells.size();
            if (right_[c])
                text += pad + cells[c];
            else
                text += cells[c] + (last ? "" : pad);
            if (!last) text += "  ";
        }
        while (!text.empty() && text.back() == ' ')
            text.pop_back();
        out += (is_header ? paint(text, Tone::dim) : text) + "\n";
    };
    if (header == Header::shown) line(headers_, true);
    for (const auto& row : rows_)
        line(row, false);
    return out;
}

}  // namespace workq::cli
