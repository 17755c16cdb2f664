//! Cleaning up the messages the caller proved to be ours: deferred until nothing is due, then
//! one command per folder (MOVE, or COPY and delete; UID EXPUNGE only where UIDPLUS keeps it
//! to our UIDs).

use futures::TryStreamExt;

use super::uids::uid_set;
use super::{FolderConn, ImapError};
use crate::config::Cleanup;
use crate::truncate;

impl FolderConn {
    /// Notes a verified message of ours for the next [`Self::flush_cleanup`].
    pub fn defer_cleanup(&mut self, uid: u32) {
        if !self.to_clean.contains(&uid) {
            self.to_clean.push(uid);
        }
    }

    /// Whether messages wait for cleanup.
    pub fn cleanup_pending(&self) -> bool {
        !self.to_clean.is_empty()
    }

    /// Cleans up every deferred message in one command; on failure they wait for the next try.
    pub async fn flush_cleanup(&mut self, how: &Cleanup) -> Result<(), ImapError> {
        if self.to_clean.is_empty() {
            return Ok(());
        }
        let uids = std::mem::take(&mut self.to_clean);
        let result = self.cleanup(&uids, how).await;
        if result.is_err() {
            self.to_clean = uids;
        }
        result
    }

    /// Removes or moves messages that the caller has verified are ours, all in one command
    /// (a UID set). A failure drops the connection (the next call reconnects).
    pub async fn cleanup(&mut self, uids: &[u32], how: &Cleanup) -> Result<(), ImapError> {
        if *how == Cleanup::Keep || uids.is_empty() {
            return Ok(());
        }
        let result = self.cleanup_inner(uids, how).await;
        if result.is_err() {
            self.reset();
        }
        result
    }

    async fn cleanup_inner(&mut self, uids: &[u32], how: &Cleanup) -> Result<(), ImapError> {
        self.ensure().await?;
        let uid_s = uid_set(uids);
        let caps = self.caps;
        let result = match how {
            Cleanup::Move(folder) if caps.move_ => {
                self.command("MOVE", |s| s.uid_mv(&uid_s, folder)).await
            }
            Cleanup::Move(folder) => {
                self.command("COPY", |s| s.uid_copy(&uid_s, folder)).await?;
                self.delete_uid(&uid_s).await
            }
            _ => self.delete_uid(&uid_s).await,
        };
        result.map_err(|e| match e {
            ImapError::Protocol { server, detail } => ImapError::Protocol {
                server,
                detail: truncate::cap(&format!("cleanup of UIDs {uid_s}: {detail}")),
            },
            other => other,
        })
    }

    async fn delete_uid(&mut self, uid: &str) -> Result<(), ImapError> {
        self.command("STORE", |s| async move {
            s.uid_store(uid, "+FLAGS.SILENT (\\Deleted)")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        if self.caps.uidplus {
            // UID EXPUNGE removes only this UID (RFC 4315 §2.1). A plain EXPUNGE would also remove
            // messages the user had marked \Deleted, so without UIDPLUS we leave it flagged.
            let gone = self
                .command("EXPUNGE", |s| async move {
                    s.uid_expunge(uid).await?.try_collect::<Vec<_>>().await
                })
                .await?;
            for seq in gone {
                self.note_expunged(Some(seq));
            }
        }
        Ok(())
    }
}
