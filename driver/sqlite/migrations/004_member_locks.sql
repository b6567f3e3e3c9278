-- The lock that vouches for a member of a subscription: the name of a
-- file in the directory beside the database (FILE-owners), which the
-- member's driver holds locked (flock) for as long as it is a member. The
-- kernel lets go of the lock when the process ends, so a claim by another
-- member that can take it frees the dead one's partitions at once instead
-- of when its lease runs out. A member without a lock (a platform without
-- flock, a process of an older release) keeps the lease rule.
ALTER TABLE subscription_members ADD COLUMN lock TEXT;
