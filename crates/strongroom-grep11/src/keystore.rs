//! Strongroom's keystore for PKCS#11 token objects (`strongroom.keystore.Keystore`), served
//! beside `grep11.Crypto` with the same authentication and error details.

use crate::*;
use strongroom_service::token_objects::TokenSpace;

/// The keystore messages and service.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod ks {
    tonic::include_proto!("strongroom.keystore");
}

fn space<'a>(name: &'a str, private: bool, proof: &'a [u8]) -> TokenSpace<'a> {
    TokenSpace {
        name,
        private,
        proof,
    }
}

#[tonic::async_trait]
impl ks::keystore_server::Keystore for Grep11 {
    async fn list_objects(
        &self,
        r: Request<ks::ListObjectsRequest>,
    ) -> Result<Response<ks::ListObjectsResponse>, Status> {
        let ctx = self.ctx(&r, Action::Ep11KeystoreList).await?;
        let q = r.into_inner();
        let objects = self
            .svc
            .token_objects(&ctx, space(&q.space, q.private, &q.auth))
            .await
            .map_err(status_of)?
            .into_iter()
            .map(|o| ks::StoredObject {
                id: o.id,
                data: o.data,
                version: o.version,
            })
            .collect();
        Ok(Response::new(ks::ListObjectsResponse { objects }))
    }

    async fn put_object(
        &self,
        r: Request<ks::PutObjectRequest>,
    ) -> Result<Response<ks::PutObjectResponse>, Status> {
        let ctx = self.ctx(&r, Action::Ep11KeystorePut).await?;
        let q = r.into_inner();
        let version = self
            .svc
            .put_token_object(
                &ctx,
                space(&q.space, q.private, &q.auth),
                &q.id,
                q.data,
                q.expected_version,
            )
            .await
            .map_err(status_of)?;
        Ok(Response::new(ks::PutObjectResponse { version }))
    }

    async fn delete_object(
        &self,
        r: Request<ks::DeleteObjectRequest>,
    ) -> Result<Response<ks::DeleteObjectResponse>, Status> {
        let ctx = self.ctx(&r, Action::Ep11KeystoreDelete).await?;
        let q = r.into_inner();
        self.svc
            .delete_token_object(&ctx, space(&q.space, q.private, &q.auth), &q.id)
            .await
            .map_err(status_of)?;
        Ok(Response::new(ks::DeleteObjectResponse {}))
    }

    async fn clear_space(
        &self,
        r: Request<ks::ClearSpaceRequest>,
    ) -> Result<Response<ks::ClearSpaceResponse>, Status> {
        let ctx = self.ctx(&r, Action::Ep11KeystoreClear).await?;
        let q = r.into_inner();
        let deleted = self
            .svc
            .clear_token_space(&ctx, &q.space)
            .await
            .map_err(status_of)?;
        Ok(Response::new(ks::ClearSpaceResponse { deleted }))
    }
}
