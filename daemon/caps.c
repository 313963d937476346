#include "daemon/caps.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CAPS_KEEP ((1u << CAP_NET_ADMIN) | (1u << CAP_NET_RAW))

int caps_lookup_user(const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam(name);

	if (!pw)
		return -ENOENT;
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

static int caps_get(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };

	return (int)syscall(SYS_capget, &h, d);
}

static int caps_set(uint32_t eff, uint32_t perm, uint32_t inh)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = {
		{ .effective = eff, .permitted = perm, .inheritable = inh },
	};

	return (int)syscall(SYS_capset, &h, d);
}

#define FAIL(what) do { int e_ = errno; snprintf(err, errlen, "%s: %s", what, strerror(e_)); \
	return -e_; } while (0)

/* Groups, then gid, then uid: all three ids of each. 0 or -errno. */
static int caps_become(uid_t uid, gid_t gid, char *err, size_t errlen)
{
	if (setgroups(1, &gid) < 0)
		FAIL("setgroups");
	if (setresgid(gid, gid, gid) < 0)
		FAIL("setresgid");
	if (setresuid(uid, uid, uid) < 0)
		FAIL("setresuid");
	return 0;
}

int caps_drop(uid_t uid, gid_t gid, char *err, size_t errlen)
{
	int r;

	/* The bounding set first, while CAP_SETPCAP is still ours. */
	for (int c = 0; c <= CAP_LAST_CAP; c++) {
		/* CAP_LAST_CAP is past 31: shifting 1u that far is undefined. */
		if (c < 32 && (CAPS_KEEP & (1u << c)))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			FAIL("dropping the capability bounding set");
	}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		FAIL("PR_SET_KEEPCAPS");
	if ((r = caps_become(uid, gid, err, errlen)) < 0)
		return r;
	if (caps_set(CAPS_KEEP, CAPS_KEEP, 0) < 0)
		FAIL("capset");
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	/* Nothing we exec could gain more (we exec nothing, but say so). */
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (setuid(0) == 0 && uid != 0) {
		snprintf(err, errlen, "could regain root after dropping it");
		return -EPERM;
	}
	return 0;
}

int caps_drop_all(uid_t uid, gid_t gid, char *err, size_t errlen)
{
	struct __user_cap_data_struct d[2];
	int r;

	/* The bounding set needs CAP_SETPCAP: a start by systemd as the user
	 * has none (and NoNewPrivileges keeps the set from mattering). */
	for (int c = 0; c <= CAP_LAST_CAP; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL && errno != EPERM)
			FAIL("dropping the capability bounding set");
	if (geteuid() == 0 && uid != (uid_t)-1 && uid != 0 &&
	    (r = caps_become(uid, gid, err, errlen)) < 0)
		return r;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		FAIL("clearing the ambient capabilities");
	if (caps_set(0, 0, 0) < 0)
		FAIL("capset");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		FAIL("PR_SET_NO_NEW_PRIVS");
	if (caps_get(d) < 0 || d[0].effective || d[0].permitted || d[1].effective || d[1].permitted) {
		snprintf(err, errlen, "capabilities left after dropping them all");
		return -EPERM;
	}
	return 0;
}

bool caps_have_net(void)
{
	struct __user_cap_data_struct d[2];

	if (caps_get(d) < 0)
		return false;
	return (d[0].effective & CAPS_KEEP) == CAPS_KEEP;
}
