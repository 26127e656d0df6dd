/*
 * The access log: one line per finished connection, in the text or the
 * JSON format the location's access_log directive chose.
 */
#ifndef WSG_ACCESS_LOG_H
#define WSG_ACCESS_LOG_H

struct wsg_conn;

/*
 * Writes <c>'s line if its configuration has an access log; a line that
 * cannot be written is lost (the error log says so once per failure run).
 */
void wsg_access_log_write(const struct wsg_conn *c);

#endif
