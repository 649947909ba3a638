// Host driver for hardware/arduino/geosensor/geoproto.h (the sketch's protocol core).
// Reads commands on stdin, one per line, and answers on stdout, one block per command:
//
//   K <checksum 0|1> <cap> <n> (<key> i <int> | <key> f <scaled> <decimals> | <key> s <hex>)...
//       -> the formatted reading line, or OVERFLOW
//   S <hex of a status line>
//       -> <n rows or negative error>, then each row on its own line
//   X <hex>
//       -> the XOR checksum as two upper-case hex digits
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "geoproto.h"

static std::string unhex(const std::string &h) {
    std::string out;
    for (size_t i = 0; i + 1 < h.size(); i += 2) out += (char)std::stoi(h.substr(i, 2), nullptr, 16);
    return out;
}

int main() {
    std::string cmdline;
    while (std::getline(std::cin, cmdline)) {
        std::istringstream in(cmdline);
        std::string cmd;
        in >> cmd;
        if (cmd == "K") {
            int cs, cap, n;
            in >> cs >> cap >> n;
            std::vector<char> buf(cap);
            geo_line l;
            geo_line_init(&l, buf.data(), (size_t)cap);
            for (int i = 0; i < n; i++) {
                std::string key, type;
                in >> key >> type;
                if (type == "i") {
                    long v;
                    in >> v;
                    geo_put_int(&l, key.c_str(), v);
                } else if (type == "f") {
                    long v;
                    int d;
                    in >> v >> d;
                    geo_put_fixed(&l, key.c_str(), v, (uint8_t)d);
                } else {
                    std::string h;
                    in >> h;
                    geo_put_str(&l, key.c_str(), unhex(h == "-" ? "" : h).c_str());
                }
            }
            if (geo_line_finish(&l, (uint8_t)cs)) std::cout << l.buf << "\n";
            else std::cout << "OVERFLOW\n";
        } else if (cmd == "S") {
            std::string h;
            in >> h;
            std::string line = unhex(h);
            std::vector<char> buf(line.begin(), line.end());
            buf.push_back('\0');
            char *rows[8];
            int n = geo_parse_status(buf.data(), rows, 8);
            std::cout << n << "\n";
            for (int i = 0; i < n; i++) std::cout << rows[i] << "\n";
        } else if (cmd == "X") {
            std::string h;
            in >> h;
            std::string s = unhex(h == "-" ? "" : h);
            std::printf("%02X\n", geo_xor(s.data(), s.size()));
            std::fflush(stdout);
        }
        std::cout.flush();
    }
    return 0;
}
